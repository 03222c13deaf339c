"""WatchAgents fan-out: one shared reader tails agent_changes into bounded per-subscriber queues."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Unpack

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import agent_pb2, registry_pb2
from hivewire_services.common.errors import HivewireError, ResourceExhausted
from hivewire_services.common.fanout import FanoutHub, FanoutUser, ReadOptions, Subscriber
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry
from hivewire_services.common.validation import check_id
from hivewire_services.registry.store import AgentStore

logger = logging.getLogger(__name__)

_VALID_CHANGES = {registry_pb2.AGENT_CHANGE_UPSERTED, registry_pb2.AGENT_CHANGE_REMOVED}


class Subscription(Subscriber[registry_pb2.WatchAgentsResponse]):
    """One watcher's bounded queue; ended with an error when it overflows or the hub stops."""

    def overflow_error(self) -> HivewireError:
        return ResourceExhausted(
            "watcher fell behind the agent changes; watch again", reason="WATCH_QUEUE_FULL"
        )


class ChangeHub(FanoutUser[registry_pb2.WatchAgentsResponse]):
    """Tails keys.agent_changes once per process (a FanoutHub) for every WatchAgents call.

    The reader's position is taken (the stream's last id) before any subscriber is accepted,
    and a subscriber is registered before it reads its snapshot: every change is then either
    reflected in the snapshot or delivered after it (possibly both, which is harmless because
    each message carries the agent as re-read from its hash). A stop ends every subscription
    with UNAVAILABLE (watchers reconnect).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        store: AgentStore,
        queue_size: int,
        *,
        ready_timeout: float = 5.0,
        **options: Unpack[ReadOptions],
    ) -> None:
        fanout = FanoutHub[registry_pb2.WatchAgentsResponse](
            redis, keys.agent_changes, self._hydrate, service="registry", **options
        )
        super().__init__(fanout, queue_size)
        self._store = store
        self._ready_timeout = ready_timeout

    async def subscribe(self) -> Subscription:
        await self._fanout.ready(self._ready_timeout)
        sub = Subscription(self.queue_size)
        self._fanout.register(sub)
        return sub

    async def _hydrate(self, entries: list[Entry]) -> list[registry_pb2.WatchAgentsResponse]:
        """Each valid change with the agent as its hash holds it now."""
        changes: list[tuple[str, int, int]] = []
        for entry_id, fields in entries:
            try:
                agent_id = check_id(fields.get(b"agent_id", b"").decode(), "agent_id")
                change = int(fields.get(b"change", b"0"))
            except Exception:
                logger.warning("skipping malformed agent change %r", entry_id)
                continue
            if change in _VALID_CHANGES:
                changes.append((agent_id, change, int(entry_id.split(b"-")[0])))
        agents = await self._store.load_agents([agent_id for agent_id, _, _ in changes])
        return [
            to_message(agent_id, change, ms, agent)
            for (agent_id, change, ms), agent in zip(changes, agents, strict=True)
        ]


def to_message(
    agent_id: str, change: int, ms: int, agent: agent_pb2.Agent | None
) -> registry_pb2.WatchAgentsResponse:
    """A live change; an agent that is offline or gone is always REMOVED."""
    if agent is None:
        agent = agent_pb2.Agent(agent_id=agent_id, state=agent_pb2.AGENT_STATE_OFFLINE)
    if agent.state == agent_pb2.AGENT_STATE_OFFLINE:
        change = registry_pb2.AGENT_CHANGE_REMOVED
    return registry_pb2.WatchAgentsResponse(
        change=change,  # type: ignore[arg-type]
        agent=agent,
        time=ts_from_ms(ms),
    )


async def watch_agents(
    hub: ChangeHub, store: AgentStore
) -> AsyncGenerator[registry_pb2.WatchAgentsResponse, None]:
    """A snapshot of every live agent, one SYNCED marker, then live changes until ended."""
    sub = await hub.subscribe()
    try:
        now = ts_from_ms(now_ms())
        for agent in await store.snapshot():
            yield registry_pb2.WatchAgentsResponse(
                change=registry_pb2.AGENT_CHANGE_SNAPSHOT, agent=agent, time=now
            )
        yield registry_pb2.WatchAgentsResponse(
            change=registry_pb2.AGENT_CHANGE_SYNCED, time=ts_from_ms(now_ms())
        )
        while True:
            yield await sub.get()
    finally:
        hub.unregister(sub)
