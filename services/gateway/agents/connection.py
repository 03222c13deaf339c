"""One agent's AgentService stream on the gateway, from hello to its end.

hello awaited -> open (assignments flow, never more unfinished than the agent's slots) ->
draining (no more inbox reads) -> closing (the agent half-closed: its reports are stored, it is
deregistered, the stream ends OK). A stream that breaks just ends: the identity keeps its lease
until it runs out, so the agent can resume on any gateway. docs/agents.md is the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc

from hivewire.core.background import cancel_and_wait
from hivewire.core.result_writer import Receipt, ResultWriter
from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import stream_pb2
from hivewire_services.common.errors import (
    HivewireError,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.agents.identity import LOST_CODES, Identity, Registrar, welcome_of
from hivewire_services.gateway.agents.inbox import Inbox, InboxGone
from hivewire_services.gateway.agents.opening import open_identity, read_hello
from hivewire_services.gateway.agents.slots import Assignment, Slots
from hivewire_services.gateway.errors import Aborted, DeadlineExceeded

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
# Room in the outgoing queue beyond two messages per slot (an assignment and an ack).
OUT_SLACK = 16
# Reports being stored at once per stream beyond one per slot; past it the stream is not read.
WRITES_SLACK = 64
_END = pb.ConnectResponse()  # marks the end of the outgoing queue (compared by identity)

Adopt = Callable[["Connection", Identity], Awaitable[None]]


@dataclass(frozen=True)
class AgentDeps:
    """What every agent stream of a gateway shares."""

    registrar: Registrar
    inbox_redis: Redis
    writer: ResultWriter
    timeout: float


class Connection:
    """`responses()` is the stream the gateway sends; it reads `requests` meanwhile."""

    def __init__(self, deps: AgentDeps, requests: AsyncIterator[pb.ConnectRequest]) -> None:
        self._deps = deps
        self._requests = requests
        self.identity: Identity | None = None
        self._slots = Slots(1)
        self._out: asyncio.Queue[pb.ConnectResponse] = asyncio.Queue(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._reading: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Future[bool]] = set()
        self._max_writes = 1
        self._beat: asyncio.Task[None] | None = None
        self._next_beat: list[str] | None = None
        self._draining = False
        self._error: BaseException | None = None
        self._ended = False

    # The stream
    async def responses(self, adopt: Adopt) -> AsyncIterator[pb.ConnectResponse]:
        """welcome, resent assignments, then whatever the session sends until it ends.

        `adopt(self, identity)` is awaited once the identity is known (the servicer ends an
        older stream of the same agent there)."""
        deps = self._deps
        hello = await read_hello(self._requests, deps.timeout)
        opening = await open_identity(deps.registrar, deps.inbox_redis, hello, partial(adopt, self))
        if self._ended:  # the gateway stopped meanwhile
            raise self._error or Unavailable("the stream ended", reason="GATEWAY_STOPPING")
        identity = self.identity = opening.identity
        # The agent's own slots (the registry stores the same number at registration).
        slots = self._slots = Slots(hello.max_concurrency)
        for envelope, entry_id in opening.pending:
            slots.add(envelope, entry_id)
        self._out = asyncio.Queue(2 * slots.max_concurrency + OUT_SLACK)
        self._max_writes = slots.max_concurrency + WRITES_SLACK
        logger.info(
            "agent %s (%s) %s on this gateway",
            identity.agent_id,
            identity.agent.name,
            "resumed" if identity.resumed else "registered",
        )
        yield pb.ConnectResponse(welcome=welcome_of(identity, opening.kept))
        for envelope in opening.resend:
            yield pb.ConnectResponse(assignment=envelope)
        inbox = Inbox(deps.inbox_redis, identity, slots, self._assign)
        self._reading = self._spawn(self._read(inbox), "inbox")
        self._spawn(self._receive(), "receive")
        while (msg := await self._out.get()) is not _END:
            yield msg
        if self._error is not None:
            raise self._error

    async def _read(self, inbox: Inbox) -> None:
        try:
            await inbox.run()
        except InboxGone:
            assert self.identity is not None
            self.fail(
                Aborted(
                    f"agent {self.identity.agent_id} lost its inbox (its lease ran out); reconnect",
                    reason="AGENT_LEASE_LOST",
                )
            )

    async def _assign(self, envelope: stream_pb2.TaskEnvelope) -> None:
        await self._out.put(pb.ConnectResponse(assignment=envelope))

    async def release(self) -> None:
        """Stop everything this stream runs (the stream is over, however it ended)."""
        self._ended = True
        await cancel_and_wait([*self._tasks, self._beat])

    # Requests
    async def _receive(self) -> None:
        """Read the agent's messages; each must come within a lease (heartbeats are due every
        third of it). The end of the requests is the agent's half-close."""
        assert self.identity is not None
        silence = self.identity.lease
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as deadline:
                while True:
                    deadline.reschedule(loop.time() + silence)
                    request = await anext(self._requests, None)
                    deadline.reschedule(None)
                    if request is None:
                        break
                    await self._on_request(request)
        except TimeoutError:
            self.fail(
                DeadlineExceeded(f"no message from the agent for {silence:g}s", reason="SILENT")
            )
            return
        await self._close_session()

    async def _on_request(self, request: pb.ConnectRequest) -> None:
        kind = request.WhichOneof("message")
        if kind == "report":
            await self._on_report(request.report)
        elif kind == "heartbeat":
            self._heartbeat(list(request.heartbeat.running_task_ids))
        elif kind == "drain":
            await self._drain()
        elif kind == "hello":
            self.fail(InvalidArgument("hello comes only first", field="hello"))
        else:
            self.fail(InvalidArgument("a ConnectRequest must carry a message", field="message"))

    async def _on_report(self, result: stream_pb2.TaskResult) -> None:
        identity = self.identity
        assert identity is not None
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

    async def _store(
        self, result: stream_pb2.TaskResult, receipt: Receipt | None
    ) -> asyncio.Future[bool]:
        """Hand a report to the writer once fewer than the bound are being stored."""
        while len(self._writes) >= self._max_writes:
            await asyncio.wait(self._writes, return_when=asyncio.FIRST_COMPLETED)
        assert self.identity is not None
        written = self._deps.writer.submit(self.identity.results, result, receipt)
        self._writes.add(written)
        written.add_done_callback(self._writes.discard)
        return written

    def _stored(self, assignment: Assignment, written: asyncio.Future[bool]) -> None:
        if written.cancelled() or written.exception() is not None or not written.result():
            self.fail(Unavailable("could not store results; reconnect", reason="REDIS_UNAVAILABLE"))
            return
        self._slots.finish(assignment)
        envelope = assignment.envelope
        ack = pb.ResultAck(task_id=envelope.task_id, attempt=envelope.attempt)
        self._send_now(pb.ConnectResponse(ack=ack))

    # Heartbeats and drain
    def _heartbeat(self, named: list[str]) -> None:
        """Forward to the registry (one call at a time; the latest heartbeat wins)."""
        self._next_beat = self._slots.known(named)
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(self._beats(), name="agent-heartbeat")

    async def _beats(self) -> None:
        identity = self.identity
        assert identity is not None
        while (running := self._next_beat) is not None:
            self._next_beat = None
            try:
                cancel = await self._deps.registrar.heartbeat(
                    identity.agent_id,
                    identity.token,
                    in_flight=len(self._slots),
                    draining=self._draining,
                    running=running,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() in LOST_CODES:
                    self.fail(
                        Aborted(
                            f"agent {identity.agent_id} lost its lease; reconnect",
                            reason="AGENT_LEASE_LOST",
                        )
                    )
                    return
                # The agent's next heartbeat tries again, well within the lease.
                logger.warning("heartbeat of agent %s failed: %s", identity.agent_id, exc.code())
                continue
            if cancel:
                with contextlib.suppress(asyncio.QueueFull):  # the next heartbeat repeats it
                    self._out.put_nowait(pb.ConnectResponse(cancel=pb.TaskCancel(task_ids=cancel)))

    async def _drain(self) -> None:
        """No more inbox reads; the registry hears it at once."""
        if self._draining:
            return
        self._draining = True
        await cancel_and_wait([self._reading])
        self._heartbeat(self._slots.task_ids())

    async def _close_session(self) -> None:
        """The agent half-closed: store what it sent, deregister it, end the stream OK."""
        await self._drain()
        await self._settle()
        if self._beat is not None:
            await asyncio.wait({self._beat}, timeout=self._deps.timeout)
        assert self.identity is not None
        try:
            await self._deps.registrar.deregister(self.identity)
        except grpc.aio.AioRpcError as exc:
            logger.warning("deregistering %s failed: %s", self.identity.agent_id, exc.code())
        logger.info("agent %s drained and left", self.identity.agent_id)
        await self._end(None)

    async def _settle(self) -> None:
        """Wait (bounded) for the reports being stored, so their acks go out first."""
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=self._deps.timeout)

    # Ending
    async def shutdown(self, error: HivewireError) -> None:
        """The gateway stops: no more reads, stored reports acknowledged, then `error`."""
        await cancel_and_wait([self._reading])
        await self._settle()
        try:
            async with asyncio.timeout(self._deps.timeout):
                await self._end(error)
        except TimeoutError:
            self.fail(error)

    async def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        await self._out.put(_END)

    def fail(self, error: BaseException) -> None:
        """End the stream now with `error` (what was not sent yet is dropped)."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        while not self._out.empty():
            self._out.get_nowait()
        self._out.put_nowait(_END)

    def _send_now(self, msg: pb.ConnectResponse) -> None:
        if self._ended:
            return
        try:
            self._out.put_nowait(msg)
        except asyncio.QueueFull:
            self.fail(
                ResourceExhausted("the agent does not read its stream", reason="AGENT_NOT_READING")
            )

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guarded(work), name=f"agent-{name}")
        self._tasks.append(task)
        return task

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)
