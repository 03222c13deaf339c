"""Unary submissions coalesced: concurrent SubmitTask calls share one submit script call.

hivewire/core/coalesce.py does the waiting: a call that finds no submission in flight is sent
after one turn of the event loop, with any made in that turn (an idle system adds
microseconds); calls that arrive while one is in flight wait
for it, then go together as one batch (at most `max_batch` rows, all of one principal: the store
creates a batch as its caller's tenant). The waiting list holds only RPCs in flight, so the
server's bound on concurrent unary calls bounds it too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import cast

from hivewire.core.coalesce import Coalescer
from hivewire.core.tracing import current_or_new_traceparent
from hivewire.v1 import task_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import NotFound
from hivewire_services.common.principal import Principal
from hivewire_services.common.submission import ValidTask

SubmitEach = Callable[[Sequence[ValidTask]], Awaitable[list[task_pb2.Task | NotFound]]]


class SubmitCoalescer:
    """Sends unary submissions through `submit_each` (TaskStore.submit_each), batching those
    that arrive while a submission is in flight; a row whose request_id's task expired fails
    its own caller only (NotFound)."""

    def __init__(self, submit_each: SubmitEach, max_batch: int) -> None:
        self._submit_each = submit_each
        self._coalescer: Coalescer[ValidTask, task_pb2.Task] = Coalescer(
            self._one, self._batch, max_batch=max_batch, key=principal.current,
            name="submit-coalescer",
        )  # fmt: skip

    @property
    def waiting(self) -> int:
        """Calls waiting for the submission in flight to end."""
        return self._coalescer.waiting

    async def submit(self, spec: ValidTask) -> task_pb2.Task:
        """Create one task, as the current principal and under the current trace context."""
        # What the store would read from this call's context, fixed now: it may run in another.
        if not spec.trace_id:
            spec = dataclasses.replace(spec, trace_id=current_or_new_traceparent())
        return await self._coalescer.call(spec)

    async def _one(self, spec: ValidTask) -> task_pb2.Task:
        [outcome] = await self._submit_each([spec])
        if isinstance(outcome, NotFound):
            raise outcome
        return outcome

    async def _batch(
        self, who: Hashable, specs: list[ValidTask]
    ) -> Sequence[task_pb2.Task | BaseException]:
        with principal.acting_as(cast(Principal, who)):  # the key: principal.current()
            return await self._submit_each(specs)
