"""ListAgents paging over the two agent indexes: live agents, then offline ones still stored.

Live agents (ONLINE, DRAINING) come first, oldest registration first (`live_agents`, scored by
registration sequence); then, when the query wants them, OFFLINE agents, most recently offline
first (`offline_agents`, scored by when each went offline, unique). A page token is a position
in one of the two groups, so a page never repeats an agent of an earlier one while membership
holds still; an agent that goes offline while a client pages may be listed in both groups or,
if it left the live group before the pages reached it, in neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hivewire.core.agent_states import is_live_agent
from hivewire.v1 import agent_pb2
from hivewire_services.registry.model import AgentQuery, PagePosition
from hivewire_services.registry.store import AgentStore

MAX_SCAN_BATCHES = 10
FILTERED_BATCH = 100  # index entries read per round trip when filters may skip most of them


@dataclass(frozen=True)
class AgentPage:
    agents: list[agent_pb2.Agent]
    next: PagePosition | None  # None: no further page


class AgentLister:
    """Pages through the agents of one store.

    With filters a page may come back short (scanning stops after a bounded number of index
    batches, the token says where to go on); index entries whose hash is gone, or whose agent
    left the group, are dropped from the index on the way.
    """

    def __init__(self, store: AgentStore) -> None:
        self._store = store
        self._redis = store.redis
        self._keys = store.keys

    async def page(self, page_size: int, start: PagePosition, query: AgentQuery) -> AgentPage:
        position = start
        if not position.offline and not query.wants_live:
            position = PagePosition(offline=True)
        batch_size = max(page_size, FILTERED_BATCH) if query.narrows else page_size
        found: list[agent_pb2.Agent] = []
        for _ in range(MAX_SCAN_BATCHES):
            batch = await self._batch(position, batch_size)
            agents = await self._store.load_agents([agent_id for agent_id, _ in batch])
            await self._drop_strays(position.offline, batch, agents)
            for n, ((_, score), agent) in enumerate(zip(batch, agents, strict=True)):
                position = PagePosition(position.offline, score)
                if agent is not None and _in_group(agent, position) and query.matches(agent):
                    found.append(agent)
                    if len(found) == page_size:
                        more = n + 1 < len(batch) or await self._has_more(position, query)
                        return AgentPage(found, position if more else None)
            if len(batch) < batch_size:  # the end of this group
                if position.offline or not query.wants_offline:
                    return AgentPage(found, None)
                position = PagePosition(offline=True)
        return AgentPage(found, position)

    async def _batch(self, position: PagePosition, count: int) -> list[tuple[str, int]]:
        """Up to `count` (id, score) after `position`, in the group's order."""
        after = position.after
        if position.offline:
            top = f"({after}" if after else "+inf"
            raw: Any = await self._redis.zrevrangebyscore(
                self._keys.offline_agents, top, "-inf", start=0, num=count, withscores=True
            )
        else:
            raw = await self._redis.zrangebyscore(
                self._keys.live_agents, f"({after}", "+inf", start=0, num=count, withscores=True
            )
        return [(member.decode(), int(score)) for member, score in raw]

    async def _has_more(self, position: PagePosition, query: AgentQuery) -> bool:
        k = self._keys
        if position.offline:
            return int(await self._redis.zcount(k.offline_agents, "-inf", f"({position.after}")) > 0
        if int(await self._redis.zcount(k.live_agents, f"({position.after}", "+inf")) > 0:
            return True
        return query.wants_offline and int(await self._redis.zcard(k.offline_agents)) > 0

    async def _drop_strays(
        self,
        offline: bool,
        batch: Sequence[tuple[str, int]],
        agents: Sequence[agent_pb2.Agent | None],
    ) -> None:
        """Forget index entries whose hash expired (and, in the live index, agents stored
        before it held only live ones)."""
        position = PagePosition(offline)
        strays = [
            agent_id
            for (agent_id, _), agent in zip(batch, agents, strict=True)
            if agent is None or not _in_group(agent, position)
        ]
        if strays:
            index = self._keys.offline_agents if offline else self._keys.live_agents
            await self._redis.zrem(index, *strays)


def _in_group(agent: agent_pb2.Agent, position: PagePosition) -> bool:
    return is_live_agent(agent.state) != position.offline
