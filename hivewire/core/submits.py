"""Submits coalesced into SubmitTasks calls, each caller keeping its own outcome.

Shared by the client SDK (its submits to the gateway) and the gateway (its callers' submits to
the coordinator); hivewire/core/coalesce.py does the waiting. SubmitTasks is atomic: when a
batch is refused for what one of its requests holds (a bad field, an unknown rate limit, an
expired request_id's task), nothing was created, and each request is sent again on its own, so
every caller gets its own task or its own error, as without coalescing. Any other failure (the
peer unreachable, a deadline, a caller not allowed) is every caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext

import grpc

from hivewire.core.coalesce import Coalescer
from hivewire.v1 import task_pb2

MAX_BATCH = 100
MAX_BATCH_BYTES = 1 << 20
# Refusals of a batch that say something about one of its requests: each goes again alone.
PER_REQUEST = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ALREADY_EXISTS,
        # A payload or a batch over a limit (a server whose HIVEWIRE_MAX_BATCH is below
        # MAX_BATCH), a spent rate limit: refused before anything was written.
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

SendOne = Callable[[task_pb2.SubmitTaskRequest], Awaitable[task_pb2.Task]]
SendMany = Callable[[Sequence[task_pb2.SubmitTaskRequest]], Awaitable[Sequence[task_pb2.Task]]]


def submit_coalescer(
    send_one: SendOne,
    send_many: SendMany,
    *,
    key: Callable[[], Hashable] = lambda: None,
    acting: Callable[[Hashable], AbstractContextManager[object]] = lambda _: nullcontext(),
    max_batch: int = MAX_BATCH,
    name: str = "hivewire-submits",
) -> Coalescer[task_pb2.SubmitTaskRequest, task_pb2.Task]:
    """A Coalescer of SubmitTask requests: alone through `send_one` (SubmitTask), together
    through `send_many` (SubmitTasks). A waiting call's `key()` (its caller) groups batches, and
    every call a batch makes, whether SubmitTasks or SubmitTask (a batch of one, a request
    resent alone), runs inside `acting(key)`: the drain runs in whichever context released it,
    not the waiting callers'."""

    async def send_batch(
        key: Hashable, requests: list[task_pb2.SubmitTaskRequest]
    ) -> Sequence[task_pb2.Task | BaseException]:
        with acting(key):
            if len(requests) == 1:
                return [await send_one(requests[0])]
            try:
                return await send_many(requests)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in PER_REQUEST:
                    raise
            # gather's tasks copy this context: each runs as the key's caller too.
            return await asyncio.gather(*(send_one(r) for r in requests), return_exceptions=True)

    return Coalescer(
        send_one,
        send_batch,
        max_batch=min(max_batch, MAX_BATCH),
        key=key,
        size=lambda request: request.ByteSize(),
        max_bytes=MAX_BATCH_BYTES,
        name=name,
    )
