"""Concurrent submit() calls share gateway calls: the SDK side of "unary submits that scale".

A submit that finds none in flight is sent at once as its own SubmitTask: an idle client adds
no latency. Submits made while one is in flight wait for it, then go together as one
SubmitTasks call (at most MAX_BATCH of them and MAX_BATCH_BYTES of requests), each request
carrying its caller's traceparent, so every task keeps its own trace. SubmitTasks is atomic:
when the gateway refuses a batch for what one request holds (a bad field, an unknown rate limit,
an expired request_id's task), nothing was created, and each request is sent again on its own,
so every caller gets its own task or its own error, as without coalescing. Any other failure
(the gateway unreachable, a deadline, a refused caller) is every caller's. A caller that gives
up while it waits is dropped before its batch is sent.

A submit waits at most for the call in flight and then its own batch's call, each with the
client's timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import grpc

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
    }
)

SendOne = Callable[[task_pb2.SubmitTaskRequest], Awaitable[task_pb2.Task]]
SendMany = Callable[[Sequence[task_pb2.SubmitTaskRequest]], Awaitable[list[task_pb2.Task]]]
_Waiting = tuple[task_pb2.SubmitTaskRequest, "asyncio.Future[task_pb2.Task]"]


class SubmitBatcher:
    """Sends submits through `send_one` (SubmitTask) or, for those that arrived while one was in
    flight, `send_many` (SubmitTasks)."""

    def __init__(self, send_one: SendOne, send_many: SendMany) -> None:
        self._send_one = send_one
        self._send_many = send_many
        self._busy = False
        self._waiting: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0
        """SubmitTasks calls made for coalesced submits (for tests and curiosity)."""

    async def submit(self, request: task_pb2.SubmitTaskRequest) -> task_pb2.Task:
        if self._busy:
            future: asyncio.Future[task_pb2.Task] = asyncio.get_running_loop().create_future()
            self._waiting.append((request, future))
            return await future
        self._busy = True
        try:
            return await self._send_one(request)
        finally:
            self._release()

    async def close(self) -> None:
        """Stop sending; submits still waiting are cancelled."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        for _, future in self._waiting:
            future.cancel()
        self._waiting.clear()

    def _release(self) -> None:
        """Hand what arrived meanwhile to the drainer (this caller returns now), or go idle."""
        if self._waiting:
            self._drainer = asyncio.create_task(self._drain(), name="hivewire-submits")
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._send(self._take())
        finally:
            self._busy = False
            self._drainer = None
            for _, future in self._waiting:  # only when the drain itself was cancelled
                future.cancel()
            self._waiting.clear()

    def _take(self) -> list[_Waiting]:
        """The oldest waiting submits still wanted, within the batch bounds (one at least)."""
        batch: list[_Waiting] = []
        size = 0
        rest: list[_Waiting] = []
        for item in self._waiting:
            if item[1].done():
                continue
            item_size = item[0].ByteSize()
            if batch and (len(batch) >= MAX_BATCH or size + item_size > MAX_BATCH_BYTES):
                rest.append(item)
                continue
            batch.append(item)
            size += item_size
        self._waiting = rest
        return batch

    async def _send(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        try:
            if len(batch) == 1:
                outcomes: list[task_pb2.Task | BaseException] = [await self._send_one(batch[0][0])]
            else:
                outcomes = await self._send_batch([request for request, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the call's failure is every caller's
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the caller left; its task exists as for an uncoalesced call
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def _send_batch(
        self, requests: list[task_pb2.SubmitTaskRequest]
    ) -> list[task_pb2.Task | BaseException]:
        self.batches += 1
        try:
            return list(await self._send_many(requests))
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in PER_REQUEST:
                raise
        # Refused for one request's sake, so nothing was created: each goes alone.
        return list(
            await asyncio.gather(*(self._send_one(r) for r in requests), return_exceptions=True)
        )
