"""The registry's part in delivery: offline agents join the reclaim set; heartbeats renew the
attempt leases of the tasks they name and say which to cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.v1 import registry_pb2, registry_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import create_channel
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings
from tests.waiting import eventually


@pytest.fixture
async def stub(settings: StackSettings) -> AsyncIterator[registry_pb2_grpc.RegistryServiceStub]:
    server = RegistryServer(settings.registry())
    await server.start("127.0.0.1:0")
    channel = create_channel(f"127.0.0.1:{server.port}", settings)
    yield registry_pb2_grpc.RegistryServiceStub(channel)
    await channel.close()
    await server.shutdown()


async def register(
    stub: registry_pb2_grpc.RegistryServiceStub,
) -> registry_pb2.RegisterAgentResponse:
    return await stub.RegisterAgent(  # type: ignore[no-any-return]
        registry_pb2.RegisterAgentRequest(name="a", capabilities=["x"], max_concurrency=2),
        timeout=5,
    )


async def test_expired_and_deregistered_agents_join_the_reclaim_set(
    stub: registry_pb2_grpc.RegistryServiceStub, redis: Redis, keys: Keys
) -> None:
    expired = await register(stub)
    gone = await register(stub)
    await redis.zadd(keys.leases, {expired.agent.agent_id: 1})  # lease long past

    async def joined() -> bool:
        return await redis.zscore(keys.reclaim_agents, expired.agent.agent_id) is not None

    await eventually(joined, within=10, message="the expired agent in the reclaim set")
    await stub.DeregisterAgent(
        registry_pb2.DeregisterAgentRequest(
            agent_id=gone.agent.agent_id, agent_token=gone.agent_token
        ),
        timeout=5,
    )
    assert await redis.zscore(keys.reclaim_agents, gone.agent.agent_id) is not None


async def test_heartbeat_names_tasks_it_does_not_hold_for_cancel(
    stub: registry_pb2_grpc.RegistryServiceStub, redis: Redis, keys: Keys
) -> None:
    reply = await register(stub)
    agent_id = reply.agent.agent_id
    mine, other = "a" * 32, "b" * 32
    await redis.hset(keys.task(mine), mapping={"state": 3, "agent_id": agent_id})
    await redis.hset(keys.task(other), mapping={"state": 3, "agent_id": "c" * 32})
    beat = await stub.SendHeartbeat(
        registry_pb2.SendHeartbeatRequest(
            agent_id=agent_id, agent_token=reply.agent_token, running_task_ids=[mine, other]
        ),
        timeout=5,
    )
    assert list(beat.cancel_task_ids) == [other]
    assert await redis.zscore(keys.task_leases, mine) is not None
    assert await redis.zscore(keys.task_leases, other) is None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=agent_id, agent_token=reply.agent_token, running_task_ids=["nope"]
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "running_task_ids[0]" in (err.value.details() or "")
