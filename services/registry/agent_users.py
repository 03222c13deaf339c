"""Redis users of agents that read their inbox directly on Redis (HIVEWIRE_AGENT_REDIS_USERS).

Each registration gets a user of its own once the agent is stored: its own inbox and XADD on
the results stream (redis_acl.agent_rules), the agent token as its password (Redis keeps only
the SHA-256 the registry stores too). The user is deleted when the agent goes offline (which
also disconnects it), and a periodic sync makes the users match the live agents again after
anything in between was lost: a registry killed between two steps, or a failover to a replica
(Redis does not replicate ACL changes). A user is only ever made for an agent already live, so
the sync never removes the user of an agent that is still registering. See docs/security.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any

from hivewire.core.redis_users import agent_user_name, agent_user_prefix
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_acl import agent_rules, user_rules
from hivewire_services.registry.store import AgentStore, Registration, token_sha256

logger = logging.getLogger(__name__)

SYNC_EVERY_S = 60.0


class AgentUsers:
    """Makes, removes and syncs the agents' Redis users of one namespace."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.namespace = keys.namespace
        agent_user_prefix(self.namespace)  # a namespace unfit for user names fails at start

    def username(self, agent_id: str) -> str:
        return agent_user_name(self.namespace, agent_id)

    async def admit(self, store: AgentStore, registration: Registration) -> str:
        """The user of an agent just registered; if it cannot be made, the agent is taken
        offline again (best effort: its lease would expire anyway) and the error raised."""
        agent_id = registration.agent.agent_id
        try:
            await self.create(agent_id, token_sha256(registration.token))
        except BaseException:
            with contextlib.suppress(Exception):
                await store.deregister(agent_id, registration.token)
            raise
        return self.username(agent_id)

    async def create(self, agent_id: str, token_sha256: str) -> None:
        rules = user_rules(token_sha256, agent_rules(self.namespace, agent_id))
        await self._acl("SETUSER", self.username(agent_id), *rules)

    async def remove(self, agent_ids: Collection[str]) -> None:
        if agent_ids:
            await self._acl("DELUSER", *(self.username(i) for i in agent_ids))

    async def sync(self) -> tuple[int, int]:
        """Users for live agents that lack one, none for agents that are not live; returns
        (made, removed)."""
        prefix = agent_user_prefix(self.namespace)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in await self._acl("USERS")]
        have = {n.removeprefix(prefix) for n in names if n.startswith(prefix)}
        members: Any = await self.redis.zrange(self.keys.leases, 0, -1)
        live = {m.decode() for m in members}
        missing = sorted(live - have)
        hashes: list[Any] = []
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for agent_id in missing:
                pipe.hget(self.keys.agent(agent_id), "token_sha256")
            hashes = await pipe.execute()
        made = 0
        for agent_id, token_hash in zip(missing, hashes, strict=True):
            if token_hash:
                await self.create(agent_id, token_hash.decode())
                made += 1
        await self.remove(have - live)
        return made, len(have - live)

    async def _acl(self, *args: str) -> Any:
        return await self.redis.execute_command("ACL", *args)  # type: ignore[no-untyped-call]

    async def run(self, every: float = SYNC_EVERY_S) -> None:
        """Sync at start, then every `every` seconds."""
        backoff = Backoff()
        while True:
            try:
                made, removed = await self.sync()
                if made or removed:
                    logger.info("agent redis users: %d made, %d removed", made, removed)
                backoff.reset()
            except Exception as exc:
                await backoff.failed("agent redis users sync", exc)
                continue
            await asyncio.sleep(every)
