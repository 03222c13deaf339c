"""Test helpers for the coordinator's domain modules: agents written straight into Redis."""

from __future__ import annotations

import json
import uuid

from hivewire.core.wire import ENVELOPE_FIELD, INBOX_GROUP, RESULT_FIELD
from hivewire.v1 import agent_pb2, registry_pb2, stream_pb2
from hivewire_services.common.keys import Keys, task_state_indexes
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.agent_cache import AgentCache


async def all_task_ids(redis: Redis, keys: Keys) -> list[str]:
    """Every task id in submission order: the per-state indexes together, read in one MULTI."""
    async with redis.pipeline(transaction=True) as pipe:
        for index in task_state_indexes(keys):
            pipe.zrange(index, 0, -1, withscores=True)
        found = await pipe.execute()
    return [m.decode() for m, _ in sorted((r for rows in found for r in rows), key=lambda r: r[1])]


async def add_agent(
    redis: Redis,
    keys: Keys,
    cache: AgentCache,
    capabilities: list[str],
    max_concurrency: int = 2,
    labels: dict[str, str] | None = None,
) -> str:
    """Write an ONLINE agent in the registry's layout and tell the cache about it."""
    agent_id = uuid.uuid4().hex
    await redis.hset(
        keys.agent(agent_id),
        mapping={
            "name": f"test-{agent_id[:6]}",
            "capabilities": ",".join(capabilities),
            "labels": json.dumps(labels or {}),
            "max_concurrency": max_concurrency,
            "state": agent_pb2.AGENT_STATE_ONLINE,
        },
    )
    await redis.xgroup_create(keys.inbox(agent_id), INBOX_GROUP, id="$", mkstream=True)
    agent = agent_pb2.Agent(
        agent_id=agent_id,
        capabilities=capabilities,
        max_concurrency=max_concurrency,
        labels=labels or {},
        state=agent_pb2.AGENT_STATE_ONLINE,
    )
    cache.apply(
        registry_pb2.WatchAgentsResponse(change=registry_pb2.AGENT_CHANGE_UPSERTED, agent=agent),
        {},
    )
    return agent_id


async def read_inbox(redis: Redis, keys: Keys, agent_id: str) -> list[stream_pb2.TaskEnvelope]:
    """Everything delivered to an agent's inbox and not yet read by it."""
    reply = await redis.xreadgroup(INBOX_GROUP, agent_id, {keys.inbox(agent_id): ">"}, count=1000)
    envelopes = []
    for _, entries in reply or []:
        for _, fields in entries:
            envelopes.append(stream_pb2.TaskEnvelope.FromString(fields[ENVELOPE_FIELD]))
    return envelopes


async def send_result(
    redis: Redis,
    keys: Keys,
    envelope: stream_pb2.TaskEnvelope,
    outcome: int = stream_pb2.TASK_OUTCOME_SUCCEEDED,
    result: bytes = b"",
    error: str = "",
    token: str | None = None,
) -> None:
    """Append the TaskResult an agent would send for an envelope."""
    msg = result_of(envelope, outcome, result, error, token)
    await redis.xadd(keys.results, {RESULT_FIELD: msg.SerializeToString()})


def result_of(
    envelope: stream_pb2.TaskEnvelope,
    outcome: int = stream_pb2.TASK_OUTCOME_SUCCEEDED,
    result: bytes = b"",
    error: str = "",
    token: str | None = None,
) -> stream_pb2.TaskResult:
    """The TaskResult an agent would send for an envelope (its token unless `token`)."""
    return stream_pb2.TaskResult(
        task_id=envelope.task_id,
        attempt=envelope.attempt,
        attempt_token=envelope.attempt_token if token is None else token,
        agent_id=envelope.agent_id,
        outcome=outcome,  # type: ignore[arg-type]
        result=result,
        error=error,
    )
