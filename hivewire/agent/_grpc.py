"""The gRPC transport: one AgentService.Connect stream to a gateway, resumed after a break.

The gateway registers the agent, reads its inbox on its behalf and stores its reports; this
side keeps what it holds (deliveries not finished, results not acknowledged) so that after a
broken stream it reconnects with capped backoff, resumes its identity and resends the results
the gateway has not acknowledged. docs/agents.md is the protocol.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field

import grpc

from hivewire import __version__
from hivewire.agent._grpc_link import FATAL_CODES, Link, ProtocolError, Welcome
from hivewire.agent._transport import AgentView, Delivery, Registration
from hivewire.core.background import cancel_and_wait
from hivewire.core.backoff import Backoff
from hivewire.core.defaults import channel_options
from hivewire.core.tls import aio_channel
from hivewire.core.tracing import client_interceptors
from hivewire.v1 import agent_service_pb2, agent_service_pb2_grpc, stream_pb2

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0
SDK = f"hivewire-python/{__version__}"
Request = agent_service_pb2.ConnectRequest


@dataclass(eq=False)
class Held:
    """A delivery this agent holds until its result is acknowledged (the Delivery's receipt)."""

    task_id: str
    attempt: int
    dropped: bool = False
    result: stream_pb2.TaskResult | None = None
    acked: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GrpcTransport:
    """Transport over AgentService (see hivewire.agent._transport.Transport)."""

    def __init__(self, registration: Registration, gateway_addr: str) -> None:
        self._registration = registration
        self._addr = gateway_addr
        self._timeout = registration.rpc_timeout
        self._channel: grpc.aio.Channel | None = None
        self._view: AgentView | None = None
        self._welcome: Welcome | None = None
        self._link: Link | None = None
        self._held: dict[str, Held] = {}
        self._inbox: collections.deque[Delivery] = collections.deque()
        self._wake = asyncio.Event()
        self._welcomed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._sessions: asyncio.Task[None] | None = None
        self._failed: BaseException | None = None
        self._last_error: BaseException | None = None
        self._draining = False
        self._closing = False

    @property
    def agent_id(self) -> str:
        return self._welcome.agent_id if self._welcome else ""

    # Lifecycle
    async def start(self, view: AgentView) -> None:
        """Connect and wait for the first welcome, retrying for up to START_TIMEOUT."""
        self._view = view
        self._channel = aio_channel(
            self._addr,
            self._registration.tls,
            options=channel_options(),
            interceptors=client_interceptors(),
            token=self._registration.token,
        )
        stub = agent_service_pb2_grpc.AgentServiceStub(self._channel)
        self._sessions = asyncio.create_task(self._run(stub), name="hivewire-agent-stream")
        welcomed = asyncio.ensure_future(self._welcomed.wait())
        try:
            await asyncio.wait(
                {welcomed, self._sessions},
                timeout=START_TIMEOUT,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            welcomed.cancel()
        if not self._welcomed.is_set():
            error = self._failed or self._last_error or TimeoutError("no welcome from the gateway")
            await self.close()
            raise error

    def start_heartbeats(self, reader: asyncio.Task[None]) -> None:
        self._reader = reader

    async def drain(self, within: float | None = None) -> None:
        self._draining = True
        self._wake.set()
        if self._link is not None:
            self._link.send(Request(drain=agent_service_pb2.AgentDrain()))

    async def close(self, within: float | None = None) -> None:
        """Half-close once the results are acknowledged; the gateway deregisters and ends the
        stream. Without a stream the identity is left to its lease."""
        self._closing = True
        self._wake.set()
        link = self._link
        if link is not None and self._sessions is not None and not self._sessions.done():
            await link.half_close()
            limit = self._timeout if within is None else within
            await asyncio.wait({self._sessions}, timeout=limit)
        await cancel_and_wait([self._sessions])
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    # Deliveries and reports
    async def receive(self, count: int) -> list[Delivery]:
        while not self._inbox:
            if self._failed is not None:
                raise self._failed
            if self._draining or self._closing:
                return []
            self._wake.clear()
            await self._wake.wait()
        return [self._inbox.popleft() for _ in range(min(count, len(self._inbox)))]

    async def report(self, result: stream_pb2.TaskResult) -> None:
        held = self._held.get(result.task_id)
        link = self._link
        if held is None or held.dropped or link is None:
            return  # best effort: a report on a running attempt may be lost with the stream
        await link.report(result)

    async def complete(self, delivery: Delivery, result: stream_pb2.TaskResult) -> None:
        held = delivery.receipt
        assert isinstance(held, Held)
        if held.dropped:
            return
        held.result = result
        if self._link is not None:
            await self._link.report(result)
        try:
            await asyncio.shield(held.acked)  # the ack, or a resume that drops it
        finally:
            if self._held.get(held.task_id) is held:
                del self._held[held.task_id]

    # The stream, again and again
    async def _run(self, stub: agent_service_pb2_grpc.AgentServiceStub) -> None:
        delays = Backoff(0.1, 5.0)
        while not self._closing:
            link = Link(stub, self._timeout)
            try:
                await self._session(link, delays)
                if not self._closing:
                    logger.warning("the gateway ended the agent stream; reconnecting")
            except grpc.aio.AioRpcError as exc:
                self._last_error = exc
                if exc.code() in FATAL_CODES:
                    logger.error("agent stream refused: %s %s", exc.code().name, exc.details())
                    self._fail(exc)
                    return
                if not self._closing:
                    logger.warning("agent stream lost: %s %s", exc.code().name, exc.details())
            except (ProtocolError, TimeoutError) as exc:
                self._last_error = exc
                logger.warning("agent stream failed: %r", exc)
            except Exception as exc:
                self._last_error = exc
                logger.exception("agent stream failed unexpectedly")
            finally:
                self._link = None
                link.break_off()
                self._forget_undelivered()
            if self._closing:
                return
            await asyncio.sleep(delays.next_delay())

    async def _session(self, link: Link, delays: Backoff) -> None:
        welcome = await link.open(self._hello())
        self._adopt(welcome)
        self._link = link
        delays.reset()
        self._welcomed.set()
        resend = asyncio.create_task(self._resend(link), name="hivewire-agent-resend")
        beats = asyncio.create_task(self._heartbeats(link, welcome.heartbeat_interval))
        try:
            async for msg in link.messages():
                self._on_message(msg)
        finally:
            await cancel_and_wait([resend, beats])

    def _hello(self) -> agent_service_pb2.AgentHello:
        reg = self._registration
        hello = agent_service_pb2.AgentHello(
            name=reg.name,
            capabilities=reg.capabilities,
            max_concurrency=reg.max_concurrency,
            labels=reg.labels,
            sdk=SDK,
        )
        if self._welcome is not None:
            hello.resume_agent_id = self._welcome.agent_id
            hello.resume_agent_token = self._welcome.agent_token
            hello.running_task_ids.extend(sorted(self._held))
        return hello

    def _adopt(self, welcome: Welcome) -> None:
        """Take the identity; drop what the gateway no longer counts as this agent's."""
        previous, self._welcome = self._welcome, welcome
        if previous is None:
            return
        if welcome.resumed and welcome.agent_id == previous.agent_id:
            gone = [t for t in self._held if t not in welcome.resumed_task_ids]
            logger.info("agent %s resumed, holding %d task(s)", welcome.agent_id, len(self._held))
        else:
            gone = list(self._held)
            logger.warning(
                "agent %s lost its identity; now %s (dropping %d task(s))",
                previous.agent_id,
                welcome.agent_id,
                len(gone),
            )
        self._drop(gone)

    def _drop(self, task_ids: list[str]) -> None:
        running = []
        for task_id in task_ids:
            held = self._held.pop(task_id)
            held.dropped = True
            if held.result is None:
                running.append(task_id)
            if not held.acked.done():
                held.acked.set_result(None)
        if running and self._view is not None:
            self._view.on_cancel(running)

    async def _resend(self, link: Link) -> None:
        if self._draining:
            link.send(Request(drain=agent_service_pb2.AgentDrain()))
        for held in list(self._held.values()):
            if held.result is not None and not held.dropped:
                await link.report(held.result)

    def _on_message(self, msg: agent_service_pb2.ConnectResponse) -> None:
        kind = msg.WhichOneof("message")
        if kind == "assignments":
            for envelope in msg.assignments.tasks:
                held = Held(envelope.task_id, envelope.attempt)
                self._held[envelope.task_id] = held
                self._inbox.append(Delivery(envelope, held, self._addr))
            self._wake.set()
        elif kind == "acks":
            for ack in msg.acks.acks:
                acked = self._held.get(ack.task_id)
                if acked is not None and acked.attempt == ack.attempt and not acked.acked.done():
                    acked.acked.set_result(None)
        elif kind == "cancel":
            if self._view is not None:
                self._view.on_cancel(list(msg.cancel.task_ids))
        elif kind == "drain":
            if self._view is not None and not self._draining:
                self._view.on_drain()
        else:
            logger.warning("unexpected %s message on the agent stream", kind)

    def _forget_undelivered(self) -> None:
        """Deliveries the run loop has not taken: the gateway sends them again after resume."""
        while self._inbox:
            held = self._inbox.popleft().receipt
            assert isinstance(held, Held)
            self._held.pop(held.task_id, None)

    async def _heartbeats(self, link: Link, interval: float) -> None:
        """Every `interval`, name the attempts held; stops when the delivery loop died (not
        drained), so the lease runs out and the work is reclaimed."""
        while True:
            reader = self._reader
            if reader is not None and reader.done() and not self._draining:
                logger.warning("delivery loop ended; heartbeats stop")
                return
            beat = agent_service_pb2.AgentHeartbeat(running_task_ids=sorted(self._held))
            link.send(Request(heartbeat=beat))
            if reader is None or reader.done():
                await asyncio.sleep(interval)  # draining: keep the lease while work finishes
            else:
                # Wake early if the delivery loop ends: liveness is tied to it.
                await asyncio.wait({reader}, timeout=interval)

    def _fail(self, exc: BaseException) -> None:
        self._failed = exc
        self._wake.set()
