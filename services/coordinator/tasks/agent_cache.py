"""A live view of the registry's agents, kept by WatchAgents instead of an RPC per task."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from hivewire.v1 import agent_pb2, registry_pb2, registry_pb2_grpc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CachedAgent:
    agent_id: str
    capabilities: frozenset[str]
    labels: dict[str, str]
    max_concurrency: int
    online: bool

    @classmethod
    def from_proto(cls, agent: agent_pb2.Agent) -> CachedAgent:
        return cls(
            agent_id=agent.agent_id,
            capabilities=frozenset(agent.capabilities),
            labels=dict(agent.labels),
            max_concurrency=agent.max_concurrency,
            online=agent.state == agent_pb2.AGENT_STATE_ONLINE,
        )

    def matches(self, required_labels: dict[str, str]) -> bool:
        return all(self.labels.get(k) == v for k, v in required_labels.items())


class AgentCache:
    """Agents by id and by capability, replaced on each snapshot and patched by live changes.

    The cache only proposes candidates: the assignment script re-checks each agent's state
    and free slots in Redis, so a stale cache can delay work but never misplace it.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        on_change: Callable[[], None],
        on_removed: Callable[[], None] | None = None,
    ) -> None:
        self._stub = registry_pb2_grpc.RegistryServiceStub(channel)
        self._on_change = on_change
        # Hears of agents gone offline (and of every fresh snapshot, which may hide some).
        self._on_removed = on_removed or (lambda: None)
        self.agents: dict[str, CachedAgent] = {}
        self._by_capability: dict[str, list[CachedAgent]] = {}
        self.synced = asyncio.Event()

    def for_capability(self, capability: str) -> list[CachedAgent]:
        return self._by_capability.get(capability, [])

    def capabilities(self) -> list[str]:
        return list(self._by_capability)

    def _rebuild(self) -> None:
        by_cap: dict[str, list[CachedAgent]] = {}
        for agent in self.agents.values():
            if agent.online:
                for cap in agent.capabilities:
                    by_cap.setdefault(cap, []).append(agent)
        self._by_capability = by_cap
        self._on_change()

    def apply(self, msg: registry_pb2.WatchAgentsResponse, staging: dict[str, CachedAgent]) -> None:
        """Apply one WatchAgents message; snapshot entries gather in `staging` until SYNCED."""
        if msg.change == registry_pb2.AGENT_CHANGE_SNAPSHOT:
            staging[msg.agent.agent_id] = CachedAgent.from_proto(msg.agent)
        elif msg.change == registry_pb2.AGENT_CHANGE_SYNCED:
            self.agents = dict(staging)
            staging.clear()
            self._rebuild()
            self.synced.set()
            self._on_removed()
        elif msg.change == registry_pb2.AGENT_CHANGE_UPSERTED:
            self.agents[msg.agent.agent_id] = CachedAgent.from_proto(msg.agent)
            self._rebuild()
        elif msg.change == registry_pb2.AGENT_CHANGE_REMOVED:
            self.agents.pop(msg.agent.agent_id, None)
            self._rebuild()
            self._on_removed()

    async def run(self) -> None:
        """Follow WatchAgents for ever, reconnecting with capped exponential backoff."""
        delay = 0.1
        while True:
            staging: dict[str, CachedAgent] = {}
            try:
                async for msg in self._stub.WatchAgents(registry_pb2.WatchAgentsRequest()):
                    self.apply(msg, staging)
                    delay = 0.1
                logger.warning("WatchAgents stream ended; reconnecting")
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                logger.warning("WatchAgents failed (%s); retrying in %.1fs", exc.code().name, delay)
            await asyncio.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, 5.0)
