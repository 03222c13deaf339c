"""Unary submissions coalesced: concurrent SubmitTask calls share one submit script call.

A call that finds no submission in flight is sent at once, alone: an idle system adds no
latency. Calls that arrive while one is in flight wait for it, then go together as one batch
(at most `max_batch` rows, all of one principal: the store creates a batch as its caller's
tenant). The waiting list holds only RPCs in flight, so the server's bound on concurrent unary
calls bounds it too. The drain ends by itself once nobody waits: the server's graceful stop,
which waits for the RPCs, waits for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from hivewire.core.tracing import current_or_new_traceparent
from hivewire.v1 import task_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import NotFound
from hivewire_services.common.principal import Principal
from hivewire_services.common.submission import ValidTask

SubmitEach = Callable[[Sequence[ValidTask]], Awaitable[list[task_pb2.Task | NotFound]]]
_Waiting = tuple[Principal, ValidTask, "asyncio.Future[task_pb2.Task]"]


class SubmitCoalescer:
    """Sends unary submissions through `submit_each` (TaskStore.submit_each), batching those
    that arrive while a submission is in flight."""

    def __init__(self, submit_each: SubmitEach, max_batch: int) -> None:
        self._submit_each = submit_each
        self._max_batch = max(1, max_batch)
        self._busy = False
        self._waiting: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        """Calls waiting for the submission in flight to end."""
        return len(self._waiting)

    async def submit(self, spec: ValidTask) -> task_pb2.Task:
        """Create one task, as the current principal and under the current trace context."""
        # What the store would read from this call's context, fixed now: it may run in another.
        if not spec.trace_id:
            spec = dataclasses.replace(spec, trace_id=current_or_new_traceparent())
        who = principal.current()
        if self._busy:
            future: asyncio.Future[task_pb2.Task] = asyncio.get_running_loop().create_future()
            self._waiting.append((who, spec, future))
            return await future
        self._busy = True
        try:
            [outcome] = await self._submit_each([spec])
        finally:
            self._release()
        if isinstance(outcome, NotFound):
            raise outcome
        return outcome

    def _release(self) -> None:
        """Hand what arrived meanwhile to the drainer (this caller returns now), or go idle."""
        if self._waiting:
            self._drainer = asyncio.create_task(self._drain(), name="submit-coalescer")
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._send(self._take())
        finally:
            self._busy = False
            self._drainer = None
            for _, _, future in self._waiting:  # only when the drain itself was cancelled
                future.cancel()
            self._waiting.clear()

    def _take(self) -> list[_Waiting]:
        """The oldest waiting principal's calls (up to max_batch; cancelled ones dropped)."""
        live = [w for w in self._waiting if not w[2].done()]
        if not live:
            self._waiting.clear()
            return []
        who = live[0][0]
        batch: list[_Waiting] = []
        rest: list[_Waiting] = []
        for item in live:
            (batch if item[0] == who and len(batch) < self._max_batch else rest).append(item)
        self._waiting = rest
        return batch

    async def _send(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        try:
            with principal.acting_as(batch[0][0]):
                outcomes = await self._submit_each([spec for _, spec, _ in batch])
            for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # the caller left; its task exists as for an uncoalesced call
                    continue
                if isinstance(outcome, NotFound):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except asyncio.CancelledError:
            for _, _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # each caller's RPC maps it to its status
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
