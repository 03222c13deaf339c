"""Agent records in Redis: every transition is one Lua script; reads are pipelined."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hivewire.core.agent_states import is_live_agent
from hivewire.core.clock import now_ms
from hivewire.v1 import agent_pb2, registry_pb2
from hivewire_services.common.errors import FailedPrecondition, NotFound, Unauthenticated
from hivewire_services.common.keys import INBOX_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.registry.config import RegistrySettings
from hivewire_services.registry.model import agent_from_hash, encode_labels, parse_load

_HERE = Path(__file__).parent
CHANGES_MAXLEN = 10_000
SWEEP_BATCH = 256


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Registration:
    """A newly registered agent and its secret token (shown once, stored only as a hash)."""

    agent: agent_pb2.Agent
    token: str


class AgentStore(RedisStore[RegistrySettings]):
    """Reads and writes the agent layout (hash, indexes, leases, inbox, agent_changes, events)."""

    def __init__(self, redis: Redis, keys: Keys, settings: RegistrySettings) -> None:
        super().__init__(redis, keys, settings)
        self._register, self._heartbeat, self._drain = self.scripts(
            _HERE, "register", "heartbeat", "drain"
        )
        offline_lib = (_HERE / "offline.lua",)
        self._deregister, self._expire = self.scripts(
            _HERE, "deregister", "expire", libs=offline_lib
        )

    @property
    def lease_ms(self) -> int:
        return int(self.settings.lease_seconds * 1000)

    @property
    def offline_retention_ms(self) -> int:
        """How long Redis keeps an offline agent (at least 1 ms: PEXPIRE 0 would fail)."""
        return max(1, int(self.settings.offline_agent_retention_seconds * 1000))

    async def register(
        self,
        name: str,
        capabilities: Sequence[str],
        max_concurrency: int,
        labels: Mapping[str, str],
        owner: str = "",
    ) -> Registration:
        """Create an ONLINE agent with a fresh id, token, lease and inbox (already validated)."""
        agent_id = uuid.uuid4().hex
        token = secrets.token_urlsafe(32)
        now = now_ms()
        k = self.keys
        await self._register(
            keys=[
                k.agent(agent_id),
                k.live_agents,
                k.leases,
                k.inbox(agent_id),
                k.agent_changes,
                k.events,
                k.agent_seq,
            ],
            args=[
                agent_id,
                name,
                ",".join(capabilities),
                encode_labels(labels),
                max_concurrency,
                now,
                now + self.lease_ms,
                token_sha256(token),
                INBOX_GROUP,
                CHANGES_MAXLEN,
                registry_pb2.AGENT_CHANGE_UPSERTED,
                self.settings.events_maxlen,
                owner,
            ],
        )
        return Registration(await self.get(agent_id), token)

    async def owner(self, agent_id: str) -> str:
        """The principal that registered the agent ("" if unknown or gone)."""
        raw = cast("bytes | None", await self.redis.hget(self.keys.agent(agent_id), "owner"))
        return raw.decode() if raw else ""

    async def heartbeat(self, agent_id: str, token: str, *, draining: bool) -> tuple[int, bool]:
        """Renew the lease; returns the new lease expiry (ms) and whether an operator drained
        the agent (DrainAgent)."""
        now = now_ms()
        expire = now + self.lease_ms
        result = await self._heartbeat(
            keys=[self.keys.agent(agent_id), self.keys.leases, self.keys.agent_changes],
            args=[
                agent_id,
                token_sha256(token),
                now,
                expire,
                "1" if draining else "0",
                CHANGES_MAXLEN,
                registry_pb2.AGENT_CHANGE_UPSERTED,
            ],
        )
        if result == b"DRAIN":
            return expire, True
        _raise_for(result, agent_id)
        return expire, False

    async def drain(self, agent_id: str) -> agent_pb2.Agent:
        """Mark a live agent DRAINING for an operator; idempotent."""
        result = await self._drain(
            keys=[self.keys.agent(agent_id), self.keys.agent_changes],
            args=[agent_id, CHANGES_MAXLEN, registry_pb2.AGENT_CHANGE_UPSERTED],
        )
        _raise_for(result, agent_id)
        return await self.get(agent_id)

    async def deregister(self, agent_id: str, token: str) -> None:
        """Take the agent offline for good; idempotent for an agent already offline."""
        result = await self._deregister(
            keys=[
                self.keys.agent(agent_id),
                self.keys.leases,
                self.keys.live_agents,
                self.keys.offline_agents,
                self.keys.agent_changes,
                self.keys.events,
                self.keys.reclaim_agents,
            ],
            args=[
                agent_id,
                token_sha256(token),
                now_ms(),
                CHANGES_MAXLEN,
                registry_pb2.AGENT_CHANGE_REMOVED,
                self.settings.events_maxlen,
                self.offline_retention_ms,
            ],
        )
        if result != b"ALREADY_OFFLINE":
            _raise_for(result, agent_id)

    async def get(self, agent_id: str) -> agent_pb2.Agent:
        [agent] = await self.load_agents([agent_id])
        if agent is None:
            raise NotFound(f"agent {agent_id} not found", reason="AGENT_NOT_FOUND")
        return agent

    async def load_agents(self, agent_ids: Sequence[str]) -> list[agent_pb2.Agent | None]:
        """The agents (None where the hash is gone) with their load, in one round trip."""
        if not agent_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(self.keys.agent(agent_id))
        pipe.hmget(self.keys.agent_load, list(agent_ids))
        replies: list[Any] = await pipe.execute()
        hashes, loads = replies[:-1], replies[-1]
        return [
            agent_from_hash(agent_id, fields, parse_load(load)) if fields else None
            for agent_id, fields, load in zip(agent_ids, hashes, loads, strict=True)
        ]

    async def snapshot(self) -> list[agent_pb2.Agent]:
        """Every ONLINE or DRAINING agent (the leases set holds exactly those)."""
        members: Any = await self.redis.zrange(self.keys.leases, 0, -1)
        ids = [member.decode() for member in members]
        out: list[agent_pb2.Agent] = []
        for start in range(0, len(ids), 500):
            for agent in await self.load_agents(ids[start : start + 500]):
                if agent is not None and is_live_agent(agent.state):
                    out.append(agent)
        return out

    async def ping(self) -> None:
        await self.redis.ping()

    async def expire_leases(self, now: int | None = None) -> tuple[list[str], int | None]:
        """Take every agent whose lease ran out before `now` offline; returns their ids and
        when the earliest lease left runs out (epoch ms, None when there is none)."""
        now = now_ms() if now is None else now
        expired: list[str] = []
        while True:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(self.keys.leases, "-inf", f"({now}", start=0, num=SWEEP_BATCH)
                pipe.zrange(self.keys.leases, 0, 0, withscores=True)
                due, head = cast(
                    tuple[list[bytes], list[tuple[bytes, float]]], await pipe.execute()
                )
            ids = [member.decode() for member in due]
            if ids:
                expired.extend(await self.expire_agents(ids, now))
            if len(ids) < SWEEP_BATCH:
                # With some expired just now, the head read may be one of them (in the past):
                # the caller then sweeps again at once and reads the true next one.
                return expired, int(head[0][1]) if head else None

    async def expire_agents(self, agent_ids: Sequence[str], now: int) -> list[str]:
        """Run the expiry script for these ids; it re-checks each lease against `now`."""
        k = self.keys
        result: list[bytes] = await self._expire(
            keys=[
                k.leases,
                k.live_agents,
                k.offline_agents,
                k.agent_changes,
                k.events,
                k.reclaim_agents,
                *(k.agent(i) for i in agent_ids),
            ],
            args=[
                now,
                CHANGES_MAXLEN,
                registry_pb2.AGENT_CHANGE_REMOVED,
                self.settings.events_maxlen,
                self.offline_retention_ms,
                *agent_ids,
            ],
        )
        return [member.decode() for member in result]


def _raise_for(result: bytes, agent_id: str) -> None:
    if result == b"OK":
        return
    if result == b"NOT_FOUND":
        raise NotFound(f"agent {agent_id} not found", reason="AGENT_NOT_FOUND")
    if result == b"BAD_TOKEN":
        raise Unauthenticated("agent_token does not match the agent", reason="BAD_AGENT_TOKEN")
    if result == b"OFFLINE":
        raise FailedPrecondition(
            f"agent {agent_id} is offline; register again", reason="AGENT_OFFLINE"
        )
    raise RuntimeError(f"unexpected script result {result!r}")
