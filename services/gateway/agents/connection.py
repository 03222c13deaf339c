"""One agent's AgentService stream on the gateway, from hello to its end.

hello awaited -> open (assignments flow, never more unfinished than the agent's slots) ->
draining (no more inbox reads) -> closing (the agent half-closed after its drain: its reports
are stored, it is deregistered, the stream ends OK). A stream that breaks just ends: the
identity keeps its lease until it runs out, so the agent can resume on any gateway.
docs/agents.md is the protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc

from hivewire.core.background import cancel_and_wait
from hivewire.core.result_writer import ResultWriter
from hivewire.v1 import agent_service_pb2 as pb
from hivewire_services.common.errors import (
    FailedPrecondition,
    HivewireError,
    InvalidArgument,
    Unavailable,
)
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.agents.identity import LOST_CODES, Identity, Registrar, welcome_of
from hivewire_services.gateway.agents.inbox import Inbox, InboxGone
from hivewire_services.gateway.agents.opening import open_identity, read_hello
from hivewire_services.gateway.agents.outbox import Outbox
from hivewire_services.gateway.agents.reports import Reports
from hivewire_services.gateway.agents.slots import Slots
from hivewire_services.gateway.errors import Aborted, DeadlineExceeded

logger = logging.getLogger(__name__)

# Acks that may wait beyond one per slot before the agent counts as not reading its stream.
OUT_SLACK = 16

Adopt = Callable[["Connection", Identity], Awaitable[None]]
Work = Callable[[], Coroutine[Any, Any, None]]


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
        self._outbox = Outbox(0)
        self._reports: Reports | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reading: asyncio.Task[None] | None = None
        self._beat: asyncio.Task[None] | None = None
        self._next_beat: list[str] | None = None
        self._draining = False

    # The stream
    async def responses(self, adopt: Adopt) -> AsyncIterator[pb.ConnectResponse]:
        """welcome, resent assignments, then whatever the session sends until it ends.

        `adopt(self, identity)` is awaited once the identity is known (the servicer ends an
        older stream of the same agent there)."""
        deps = self._deps
        hello = await read_hello(self._requests, deps.timeout)
        opening = await open_identity(deps.registrar, deps.inbox_redis, hello, partial(adopt, self))
        if self._outbox.ended:  # the gateway stopped meanwhile
            raise self._outbox.error or Unavailable("the stream ended", reason="GATEWAY_STOPPING")
        identity = self.identity = opening.identity
        # The agent's own slots (the registry stores the same number at registration).
        slots = self._slots = Slots(hello.max_concurrency)
        for envelope, entry_id in opening.pending:
            slots.add(envelope, entry_id)
        self._outbox = Outbox(max_acks=slots.max_concurrency + OUT_SLACK)
        self._reports = Reports(identity, slots, deps.writer, self._outbox, self.fail)
        logger.info(
            "agent %s (%s) %s on this gateway",
            identity.agent_id,
            identity.agent.name,
            "resumed" if identity.resumed else "registered",
        )
        yield pb.ConnectResponse(welcome=welcome_of(identity, opening.kept))
        for envelope in opening.resend:
            self._outbox.assign(envelope)
        inbox = Inbox(deps.inbox_redis, identity, slots, self._outbox.assign)
        self._reading = self._spawn(partial(self._read, inbox), "inbox")
        self._spawn(self._receive, "receive")
        async for msg in self._outbox.messages():
            yield msg

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

    async def release(self) -> None:
        """Stop everything this stream runs (the stream is over, however it ended)."""
        self._outbox.close()
        await cancel_and_wait([*self._tasks, self._beat])

    # Requests
    async def _receive(self) -> None:
        """Read the agent's messages; each must come within a lease (heartbeats are due every
        third of it). The end of the requests is the agent's half-close."""
        assert self.identity is not None and self._reports is not None
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
                    kind = request.WhichOneof("message")
                    if kind == "reports":
                        for report in request.reports.reports:
                            await self._reports.report(report)
                    elif kind == "heartbeat":
                        self._heartbeat(list(request.heartbeat.running_task_ids))
                    elif kind == "drain":
                        await self._drain()
                    else:
                        field = kind or "message"
                        self.fail(InvalidArgument(f"unexpected {field} message", field=field))
        except TimeoutError:
            self.fail(
                DeadlineExceeded(f"no message from the agent for {silence:g}s", reason="SILENT")
            )
            return
        if not self._draining:
            # A broken connection ends the requests as a half-close does (grpc.aio hands this
            # task EOF before it cancels the call), and leaving undrained would deregister an
            # agent that is about to resume: only an agent that drained first leaves. The
            # identity keeps its lease either way.
            self.fail(
                FailedPrecondition(
                    "the agent half-closed without draining first; send drain, wait for the "
                    "acks, then half-close",
                    reason="HALF_CLOSE_WITHOUT_DRAIN",
                )
            )
            return
        await self._close_session()

    # Heartbeats and drain
    def _heartbeat(self, named: list[str]) -> None:
        """Forward to the registry (one call at a time; the latest heartbeat wins)."""
        self._next_beat = self._slots.known(named)
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(self._guarded(self._beats), name="agent-heartbeat")

    async def _beats(self) -> None:
        identity = self.identity
        assert identity is not None
        while (running := self._next_beat) is not None:
            self._next_beat = None
            try:
                cancel, drain = await self._deps.registrar.heartbeat(
                    identity.agent_id,
                    identity.token,
                    in_flight=len(self._slots),
                    draining=self._draining,
                    running=running,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() in LOST_CODES:
                    lost = f"agent {identity.agent_id} lost its lease; reconnect"
                    self.fail(Aborted(lost, reason="AGENT_LEASE_LOST"))
                    return
                # The agent's next heartbeat tries again, well within the lease.
                logger.warning("heartbeat of agent %s failed: %s", identity.agent_id, exc.code())
                continue
            if cancel:  # dropped past a bound: the next heartbeat repeats it
                self._outbox.cancel(cancel)
            if drain and not self._draining:
                self._outbox.drain()

    async def _drain(self) -> None:
        """No more inbox reads; the registry hears it at once."""
        if self._draining:
            return
        self._draining = True
        await cancel_and_wait([self._reading])
        self._heartbeat(self._slots.task_ids())

    async def _close_session(self) -> None:
        """The agent half-closed: store what it sent, deregister it, end the stream OK."""
        assert self.identity is not None and self._reports is not None
        await self._drain()
        await self._reports.settle(self._deps.timeout)
        if self._beat is not None:
            await asyncio.wait({self._beat}, timeout=self._deps.timeout)
        try:
            await self._deps.registrar.deregister(self.identity)
        except grpc.aio.AioRpcError as exc:
            logger.warning("deregistering %s failed: %s", self.identity.agent_id, exc.code())
        logger.info("agent %s drained and left", self.identity.agent_id)
        await self._outbox.end()

    # Ending
    async def shutdown(self, error: HivewireError) -> None:
        """The gateway stops: no more reads, stored reports acknowledged, then `error`."""
        await cancel_and_wait([self._reading])
        if self._reports is not None:
            await self._reports.settle(self._deps.timeout)
        await self._outbox.end(error, self._deps.timeout)

    def fail(self, error: BaseException) -> None:
        """End the stream now with `error`."""
        self._outbox.fail(error)

    def _spawn(self, work: Work, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guarded(work), name=f"agent-{name}")
        self._tasks.append(task)
        return task

    async def _guarded(self, work: Work) -> None:
        """A task of the stream: an unexpected error ends the stream (INTERNAL, logged). The
        coroutine is made here, so a task cancelled before it ran leaves none unawaited."""
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.fail(exc)
