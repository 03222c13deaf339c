"""Read-only views of current state in Redis for snapshots and stats (never written here).

The gateway reads the agent and task hashes directly, a few fields at a time in pipelined
chunks, so a snapshot of a large system neither loads payloads nor holds it all in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import cast

from hivewire.v1 import task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.tenancy import tenant_of

CHUNK = 500
UNFINISHED_STATES = (
    task_pb2.TASK_STATE_SCHEDULED,
    task_pb2.TASK_STATE_PENDING,
    task_pb2.TASK_STATE_ASSIGNED,
    task_pb2.TASK_STATE_RUNNING,
)
_AGENT_FIELDS = ("state", "capabilities", "max_concurrency", "heartbeat_ms")
_TASK_FIELDS = (
    "state", "capability", "attempt", "agent_id", "workflow_id", "step_id",
    "create_ms", "assign_ms", "start_ms", "tenant",
)  # fmt: skip


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    state: int
    capabilities: tuple[str, ...]
    max_concurrency: int
    heartbeat_ms: int
    in_flight: int


@dataclass(frozen=True)
class TaskView:
    task_id: str
    state: int
    capability: str
    attempt: int
    agent_id: str
    workflow_id: str
    step_id: str
    changed_ms: int  # the latest of create, assign and start
    tenant: str = ""  # as stored: '' for the default tenant


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _int(raw: bytes | None) -> int:
    try:
        return int(raw) if raw else 0
    except ValueError:
        return 0


class StateReader:
    """Pages through agents and tasks in chunks of CHUNK ids."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def agents(
        self, limit: int = 100_000, *, include_offline: bool = True
    ) -> AsyncIterator[AgentView]:
        """Live agents, then (with `include_offline`) the offline ones still stored."""
        indexes = [self.keys.live_agents]
        if include_offline:
            indexes.append(self.keys.offline_agents)
        seen = 0
        for index in indexes:
            async for view in self._agents(index, limit - seen):
                seen += 1
                yield view

    async def _agents(self, index: str, limit: int) -> AsyncIterator[AgentView]:
        seen = 0
        after = float("-inf")
        while seen < limit:
            ids, after = await self._ids(index, after, min(CHUNK, limit - seen))
            if not ids:
                return
            pipe = self.redis.pipeline(transaction=False)
            for agent_id in ids:
                pipe.hmget(self.keys.agent(agent_id), list(_AGENT_FIELDS))
            pipe.hmget(self.keys.agent_load, ids)
            rows = cast(list[list[bytes | None]], await pipe.execute())
            loads = rows.pop()
            for agent_id, values, load in zip(ids, rows, loads, strict=True):
                state, caps, max_concurrency, heartbeat = values
                if state is None:
                    continue  # deleted between the index read and the hash read
                yield AgentView(
                    agent_id,
                    _int(state),
                    tuple(c for c in _text(caps).split(",") if c),
                    _int(max_concurrency),
                    _int(heartbeat),
                    max(0, _int(load)),
                )
            seen += len(ids)

    async def unfinished_tasks(
        self, limit: int, tenant: str | None = None
    ) -> AsyncIterator[TaskView]:
        """Tasks SCHEDULED, PENDING, ASSIGNED or RUNNING, oldest first per state, at most
        `limit`; with `tenant`, only that tenant's (the others are read and skipped)."""
        sent = 0
        for state in UNFINISHED_STATES:
            index = self.keys.tasks_by_state(str(state))
            after = float("-inf")
            while sent < limit:
                ids, after = await self._ids(index, after, min(CHUNK, limit - sent))
                if not ids:
                    break
                for view in await self._tasks(ids):
                    if tenant is not None and tenant_of(view.tenant) != tenant:
                        continue
                    if view.state == state:  # moved on since the index read: its event follows
                        sent += 1
                        yield view

    async def task(self, task_id: str) -> TaskView | None:
        views = await self._tasks([task_id])
        return views[0] if views else None

    async def _tasks(self, ids: Sequence[str]) -> list[TaskView]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(self.keys.task(task_id), list(_TASK_FIELDS))
        rows = cast(list[list[bytes | None]], await pipe.execute())
        out = []
        for task_id, values in zip(ids, rows, strict=True):
            state, cap, attempt, agent, wf, step, create, assign, started, tenant = values
            if state is None:
                continue
            out.append(
                TaskView(
                    task_id, _int(state), _text(cap), _int(attempt), _text(agent), _text(wf),
                    _text(step), max(_int(create), _int(assign), _int(started)), _text(tenant),
                )
            )  # fmt: skip
        return out

    async def _ids(self, key: str, after: float, count: int) -> tuple[list[str], float]:
        """Up to `count` ids scored above `after` (scores are sequences, so paging by score
        skips nothing when members leave the index between pages) and the last score."""
        raw = cast(
            list[tuple[bytes, float]],
            await self.redis.zrangebyscore(
                key, f"({after}", "+inf", start=0, num=count, withscores=True
            ),
        )
        return [member.decode() for member, _ in raw], (raw[-1][1] if raw else after)
