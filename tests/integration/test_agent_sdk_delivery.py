"""The agent SDK's part in delivery, against the real registry (port 0) and real Redis:
heartbeats name running tasks and carry cancellations back; a dead reader stops heartbeats.

Tests taking `transport` run over both transports; the two that break the inbox in Redis
under the agent test the direct Redis transport's own reader and stay redis-only."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hivewire.agent import Agent, TaskContext
from hivewire.core.wire import ENVELOPE_FIELD, RESULT_FIELD
from hivewire.v1 import agent_pb2, stream_pb2, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.registry.server import RegistryServer
from tests.integration.agent_transports import transport_options
from tests.settings import StackSettings
from tests.waiting import eventually


@pytest.fixture
async def registry_port(settings: StackSettings) -> AsyncIterator[int]:
    server = RegistryServer(settings.registry())
    port = await server.start("127.0.0.1:0")
    yield port
    await server.shutdown()


def sleeper(registry_port: int, settings: StackSettings, **options: Any) -> Agent:
    options = {
        "registry_addr": f"127.0.0.1:{registry_port}",
        "redis_url": settings.redis_url,
        **options,
    }
    agent = Agent("delivery-sdk", running_report_after=0.01, drain_grace=1.0, **options)

    @agent.handler("sleep")
    async def sleep(ctx: TaskContext) -> None:
        await asyncio.sleep(float(ctx.json()["secs"]))  # the work: as long as the test asks

    return agent


STARTED = stream_pb2.TASK_OUTCOME_STARTED


async def results(redis: Redis, keys: Keys) -> list[stream_pb2.TaskResult]:
    """Every result in the results stream."""
    entries = await redis.xrange(keys.results)
    return [stream_pb2.TaskResult.FromString(f[RESULT_FIELD]) for _, f in entries]


async def deliver(
    redis: Redis, keys: Keys, agent_id: str, secs: float, *, owned: bool = False
) -> str:
    """Put a sleep task in the agent's inbox; `owned`: the coordinator's record says the agent
    runs it (else heartbeats naming it are told to cancel it)."""
    task_id = uuid.uuid4().hex
    if owned:
        running = {"state": task_pb2.TASK_STATE_RUNNING, "agent_id": agent_id}
        await redis.hset(keys.task(task_id), mapping=running)
    envelope = stream_pb2.TaskEnvelope(
        task_id=task_id,
        attempt=1,
        attempt_token=uuid.uuid4().hex,
        capability="sleep",
        payload=json.dumps({"secs": secs}).encode(),
        agent_id=agent_id,
    )
    await redis.xadd(keys.inbox(agent_id), {ENVELOPE_FIELD: envelope.SerializeToString()})
    return task_id


async def test_heartbeat_renews_running_tasks_and_cancels_others(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys, transport: str
) -> None:
    registry_addr = f"127.0.0.1:{registry_port}"
    async with (
        transport_options(transport, settings, registry_addr) as options,
        sleeper(registry_port, settings, **options) as agent,
    ):
        agent_id = agent.agent_id
        kept = await deliver(redis, keys, agent_id, 30)
        dropped = await deliver(redis, keys, agent_id, 30)
        # As the coordinator would have it: `kept` is this agent's attempt; `dropped` was
        # cancelled by a client meanwhile.
        await redis.hset(
            keys.task(kept), mapping={"state": task_pb2.TASK_STATE_RUNNING, "agent_id": agent_id}
        )
        await redis.hset(
            keys.task(dropped),
            mapping={"state": task_pb2.TASK_STATE_CANCELLED, "agent_id": agent_id},
        )

        async def heartbeat_answered() -> list[stream_pb2.TaskResult]:
            final = [r for r in await results(redis, keys) if r.outcome != STARTED]
            assert final and await redis.zscore(keys.task_leases, kept) is not None
            return final

        # Heartbeats come every lease/3 = 1 s.
        final = await eventually(heartbeat_answered, within=10, message="a heartbeat")
        assert [(r.task_id, r.outcome) for r in final] == [
            (dropped, stream_pb2.TASK_OUTCOME_CANCELLED)
        ]
        # The cancelled attempt leaves the count once it has ended, just after its report.
        await eventually(lambda: agent.in_flight == 1, within=10, message="one attempt left")


async def test_dead_reader_stops_heartbeats_and_the_lease_runs_out(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    agent = sleeper(registry_port, settings)
    await agent.start()
    agent_id = agent.agent_id
    try:
        # Break the inbox so the reader fails with an error it does not retry.
        await redis.delete(keys.inbox(agent_id))
        await redis.set(keys.inbox(agent_id), "not a stream")

        async def offline() -> bool:
            state = await redis.hget(keys.agent(agent_id), "state")
            return int(state or 0) == agent_pb2.AGENT_STATE_OFFLINE

        await eventually(offline, within=15, message="the agent OFFLINE")
        assert await redis.zscore(keys.reclaim_agents, agent_id) is not None
    finally:
        await redis.delete(keys.inbox(agent_id))
        await agent.stop(grace=1)


async def test_inbox_deleted_during_a_blocking_read_means_register_again(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    async with sleeper(registry_port, settings) as agent:
        old = agent.agent_id

        async def reader_blocked() -> bool:
            clients = await redis.client_list()
            return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients)

        await eventually(reader_blocked, within=10, message="the reader blocked in XREADGROUP")
        await redis.delete(keys.inbox(old))  # as a reclaim of this agent's inbox would
        await eventually(lambda: agent.agent_id != old, within=10, message="a new registration")
        task_id = await deliver(redis, keys, agent.agent_id, 0)

        async def done() -> bool:
            return any(
                r.task_id == task_id and r.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
                for r in await results(redis, keys)
            )

        await eventually(done, within=10, message="the task done by the new registration")
