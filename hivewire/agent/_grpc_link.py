"""One AgentService.Connect stream: hello and welcome, one write at a time, the messages read."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from hivewire.v1 import agent_service_pb2, agent_service_pb2_grpc

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
    """A Connect call. Writes are serialized; a write the gateway does not take within
    `write_timeout` (it stopped reading) or that fails marks the link broken, and the reader
    then sees the stream's end. The stream itself has no deadline: it is a session."""

    def __init__(self, stub: agent_service_pb2_grpc.AgentServiceStub, timeout: float) -> None:
        self._call = stub.Connect()
        self._timeout = timeout
        self.write_timeout = timeout
        self._lock = asyncio.Lock()
        self.broken = False

    async def open(self, hello: agent_service_pb2.AgentHello) -> Welcome:
        """Send hello and wait (bounded) for welcome; raises AioRpcError if the stream ends."""
        await self._call.write(agent_service_pb2.ConnectRequest(hello=hello))
        async with asyncio.timeout(self._timeout):
            first = await self._call.read()
        if first is grpc.aio.EOF:
            raise ProtocolError("the gateway ended the stream without a welcome")
        if first.WhichOneof("message") != "welcome":
            raise ProtocolError(f"expected welcome, got {first.WhichOneof('message')}")
        welcome = Welcome.of(first.welcome)
        self.write_timeout = max(self._timeout, welcome.lease)
        return welcome

    async def send(self, request: agent_service_pb2.ConnectRequest) -> bool:
        """Write one message; False if the link is (now) broken."""
        if self.broken:
            return False
        try:
            async with self._lock:
                async with asyncio.timeout(self.write_timeout):
                    await self._call.write(request)
            return True
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, TimeoutError) as exc:
            logger.debug("agent stream write failed: %r", exc)
            self.break_off()
            return False

    async def messages(self) -> AsyncIterator[agent_service_pb2.ConnectResponse]:
        """What the gateway sends, until it ends the stream (AioRpcError if not OK)."""
        while True:
            msg = await self._call.read()
            if msg is grpc.aio.EOF:
                return
            yield msg

    async def half_close(self) -> None:
        """Say no more messages come (the gateway then deregisters and ends the stream)."""
        if self.broken:
            return
        async with self._lock:
            try:
                await self._call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
                logger.debug("half-close failed: %r", exc)

    def break_off(self) -> None:
        """Cancel the call (the gateway sees the connection go, as after a crash)."""
        self.broken = True
        self._call.cancel()
