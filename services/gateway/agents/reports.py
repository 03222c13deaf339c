"""An agent stream's reports: fenced to its own assignments, stored, and the results acked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from hivewire.core.result_writer import Receipt, ResultWriter
from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import stream_pb2
from hivewire_services.common.errors import ResourceExhausted, Unavailable
from hivewire_services.gateway.agents.identity import Identity
from hivewire_services.gateway.agents.outbox import Outbox
from hivewire_services.gateway.agents.slots import Assignment, Slots

logger = logging.getLogger(__name__)

RUNNING = frozenset({stream_pb2.TASK_OUTCOME_STARTED, stream_pb2.TASK_OUTCOME_PROGRESS})
FINAL = frozenset(
    {
        stream_pb2.TASK_OUTCOME_SUCCEEDED,
        stream_pb2.TASK_OUTCOME_FAILED,
        stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY,
        stream_pb2.TASK_OUTCOME_CANCELLED,
    }
)
# Reports being stored at once per stream beyond one per slot; past it the stream is not read.
WRITES_SLACK = 64


class Reports:
    """Stores what the agent reports on its assignments, in order; an attempt's end is acked
    (and its slot freed) once stored. Reports on anything else are dropped with a warning:
    a stream can never write another agent's results."""

    def __init__(
        self,
        identity: Identity,
        slots: Slots,
        writer: ResultWriter,
        outbox: Outbox,
        fail: Callable[[BaseException], None],
    ) -> None:
        self._identity = identity
        self._slots = slots
        self._writer = writer
        self._outbox = outbox
        self._fail = fail
        self._writes: set[asyncio.Future[bool]] = set()
        self._max_writes = slots.max_concurrency + WRITES_SLACK

    async def report(self, result: stream_pb2.TaskResult) -> None:
        identity = self._identity
        assignment = self._slots.match(result)
        if assignment is None:
            logger.warning(
                "agent %s reported on task %s attempt %d, not assigned on its stream; dropped",
                identity.agent_id,
                result.task_id,
                result.attempt,
            )
            return
        result.agent_id = identity.agent_id
        if result.outcome in RUNNING:
            await self._store(result, None)
        elif result.outcome in FINAL:
            if assignment.storing:
                return  # a resend while the first copy is being stored
            assignment.storing = True
            receipt = Receipt(identity.inbox, identity.inbox_group, assignment.entry_id)
            written = await self._store(result, receipt)
            written.add_done_callback(partial(self._stored, assignment))
        else:
            logger.warning("agent %s sent outcome %d; dropped", identity.agent_id, result.outcome)

    async def settle(self, within: float) -> None:
        """Wait (at most `within` seconds) for the reports being stored, so their acks are
        queued before whatever comes next."""
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=within)

    async def _store(
        self, result: stream_pb2.TaskResult, receipt: Receipt | None
    ) -> asyncio.Future[bool]:
        """Hand a report to the writer once fewer than the bound are being stored."""
        while len(self._writes) >= self._max_writes:
            await asyncio.wait(self._writes, return_when=asyncio.FIRST_COMPLETED)
        written = self._writer.submit(self._identity.results, result, receipt)
        self._writes.add(written)
        written.add_done_callback(self._writes.discard)
        return written

    def _stored(self, assignment: Assignment, written: asyncio.Future[bool]) -> None:
        if written.cancelled() or written.exception() is not None or not written.result():
            self._fail(
                Unavailable("could not store results; reconnect", reason="REDIS_UNAVAILABLE")
            )
            return
        self._slots.finish(assignment)
        envelope = assignment.envelope
        if not self._outbox.ack(pb.ResultAck(task_id=envelope.task_id, attempt=envelope.attempt)):
            # An agent that reads its stream never has more acks waiting than slots.
            self._fail(
                ResourceExhausted("the agent does not read its stream", reason="AGENT_NOT_READING")
            )
