"""One AgentService.Connect stream: hello and welcome, one writer batching reports, the reader."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from hivewire.core.background import cancel_and_wait
from hivewire.v1 import agent_service_pb2, agent_service_pb2_grpc, stream_pb2

logger = logging.getLogger(__name__)

# A stream that ends with one of these will end the same way again: the agent gives up.
FATAL_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
# Reports waiting to be written before a reporter waits (progress cannot flood the stream).
MAX_PENDING_REPORTS = 1024
# Most bytes of reports per message (a larger single one goes alone): under the message limit.
MAX_BATCH_BYTES = 1 << 20

Request = agent_service_pb2.ConnectRequest


class ProtocolError(Exception):
    """The gateway answered something the protocol does not allow (e.g. no welcome first)."""


@dataclass(frozen=True)
class Welcome:
    """The identity a gateway gave this agent (agent_service.proto AgentWelcome)."""

    agent_id: str
    agent_token: str
    lease: float
    heartbeat_interval: float
    resumed: bool
    resumed_task_ids: frozenset[str]

    @classmethod
    def of(cls, msg: agent_service_pb2.AgentWelcome) -> Welcome:
        lease = msg.lease_duration.ToTimedelta().total_seconds() or 15.0
        interval = msg.heartbeat_interval.ToTimedelta().total_seconds() or lease / 3
        return cls(
            msg.agent.agent_id,
            msg.agent_token,
            lease,
            interval,
            msg.resumed,
            frozenset(msg.resumed_task_ids),
        )


class Link:
    """A Connect call. One writer task sends what is queued, reports batched: whatever is
    reported while a message is being written goes in the next one. A write the gateway does
    not take within `write_timeout` (it stopped reading) or that fails breaks the link, and the
    reader then sees the stream's end. The stream itself has no deadline: it is a session."""

    def __init__(self, stub: agent_service_pb2_grpc.AgentServiceStub, timeout: float) -> None:
        self._call = stub.Connect()
        self._timeout = timeout
        self._write_timeout = timeout
        self._control: list[agent_service_pb2.ConnectRequest] = []
        self._reports: list[stream_pb2.TaskResult] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self.broken = False

    async def open(self, hello: agent_service_pb2.AgentHello) -> Welcome:
        """Send hello and wait (bounded) for welcome; raises AioRpcError if the stream ends."""
        await self._call.write(Request(hello=hello))
        async with asyncio.timeout(self._timeout):
            first = await self._call.read()
        if first is grpc.aio.EOF:
            raise ProtocolError("the gateway ended the stream without a welcome")
        if first.WhichOneof("message") != "welcome":
            raise ProtocolError(f"expected welcome, got {first.WhichOneof('message')}")
        welcome = Welcome.of(first.welcome)
        self._write_timeout = max(self._timeout, welcome.lease)
        self._writer = asyncio.create_task(self._write_loop(), name="hivewire-agent-writer")
        return welcome

    def send(self, request: agent_service_pb2.ConnectRequest) -> None:
        """Queue a heartbeat or drain (sent before the reports queued with it)."""
        if not self.broken:
            self._control.append(request)
            self._wake.set()

    async def report(self, result: stream_pb2.TaskResult) -> None:
        """Queue a report, waiting while too many are queued."""
        while len(self._reports) >= MAX_PENDING_REPORTS and not self.broken:
            self._room.clear()
            await self._room.wait()
        if not self.broken:
            self._reports.append(result)
            self._wake.set()

    async def messages(self) -> AsyncIterator[agent_service_pb2.ConnectResponse]:
        """What the gateway sends, until it ends the stream (AioRpcError if not OK)."""
        while True:
            msg = await self._call.read()
            if msg is grpc.aio.EOF:
                return
            yield msg

    async def half_close(self) -> None:
        """Once what is queued is written (bounded), say no more messages come (the gateway
        then stores them, deregisters the agent and ends the stream)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._write_timeout):
                while (self._control or self._reports) and not self.broken:
                    self._idle.clear()
                    await self._idle.wait()
        await cancel_and_wait([self._writer])
        if self.broken:
            return
        try:
            await self._call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            logger.debug("half-close failed: %r", exc)

    def break_off(self) -> None:
        """Cancel the call (the gateway sees the connection go, as after a crash)."""
        self.broken = True
        self._call.cancel()
        self._room.set()
        self._idle.set()
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()

    async def _write_loop(self) -> None:
        try:
            while True:
                if not (self._control or self._reports):
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                control, self._control = self._control, []
                for request in control:
                    await self._write(request)
                while self._reports:
                    await self._write(Request(reports=self._batch()))
                    self._room.set()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError) as exc:
            logger.debug("agent stream write failed: %r", exc)
            self.break_off()

    def _batch(self) -> agent_service_pb2.AgentReports:
        size, n = 0, 0
        for result in self._reports:
            size += result.ByteSize()
            if n and size > MAX_BATCH_BYTES:
                break
            n += 1
        batch, self._reports = self._reports[:n], self._reports[n:]
        return agent_service_pb2.AgentReports(reports=batch)

    async def _write(self, request: agent_service_pb2.ConnectRequest) -> None:
        async with asyncio.timeout(self._write_timeout):
            await self._call.write(request)
