"""How an agent reaches Hivewire: the Transport interface its run loop drives.

Two transports implement it: `redis` (hivewire.agent._redis: the registry over gRPC and the
agent's own inbox on Redis) and `grpc` (hivewire.agent._grpc: one AgentService stream to a
gateway, no Redis credentials). The run loop (hivewire.agent._agent) owns slots, handlers,
cancellation and drain; a transport owns registration, liveness, deliveries and reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hivewire.core.tls import PLAINTEXT, TlsConfig
from hivewire.v1 import stream_pb2

TRANSPORTS = ("redis", "grpc")


@dataclass(frozen=True)
class Delivery:
    """One attempt handed to the agent: the envelope, and what its transport needs to finish it."""

    envelope: stream_pb2.TaskEnvelope
    receipt: object
    source: str
    """Where it came from, for the processing span (an inbox stream, a gateway)."""


@dataclass(frozen=True)
class Registration:
    """Who the agent says it is, whatever the transport."""

    name: str
    capabilities: list[str]
    max_concurrency: int
    labels: dict[str, str]
    rpc_timeout: float
    tls: TlsConfig = PLAINTEXT
    """How it dials Hivewire; under mTLS its client certificate is part of who it is."""
    token: str = ""
    """Its API token (an agent token), sent on every call; "" without authentication."""


@dataclass(frozen=True)
class AgentView:
    """What a transport may ask of the run loop."""

    running: Callable[[], list[str]]
    """Ids of the tasks whose handlers are running (heartbeats name them)."""
    on_cancel: Callable[[list[str]], None]
    """Stop these tasks' handlers (each then reports CANCELLED)."""
    on_drain: Callable[[], None] = lambda: None
    """An operator drained the agent (DrainAgent): stop as on SIGTERM (take no new work,
    finish what it holds, exit)."""


class Transport(Protocol):
    """What the run loop needs from a transport; every method may be awaited concurrently."""

    @property
    def agent_id(self) -> str:
        """The current identity ('' before registration; may change on re-registration)."""

    async def start(self, view: AgentView) -> None:
        """Register (retrying an unreachable service for a while); raise if refused."""

    def start_heartbeats(self, reader: asyncio.Task[None]) -> None:
        """Keep the lease alive while `reader` (the delivery loop) runs, and while draining."""

    async def receive(self, count: int) -> list[Delivery]:
        """Wait for up to `count` (>= 1) new deliveries; [] when there is none for now or the
        agent drains. Raises when the transport failed for good."""

    async def report(self, result: stream_pb2.TaskResult) -> None:
        """Send a report on a running attempt (STARTED, PROGRESS); best effort, never raises."""

    async def complete(self, delivery: Delivery, result: stream_pb2.TaskResult) -> None:
        """Store an attempt's final result; returns once it is stored (or given up on)."""

    async def drain(self, within: float | None = None) -> None:
        """Take no new work and say so (within `within` seconds); `receive` returns at once
        from now on, with what was delivered and not yet handed out ([] when nothing was)."""

    async def close(self, within: float | None = None) -> None:
        """After the work finished: deregister (within `within` seconds), release connections."""
