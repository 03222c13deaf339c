"""WatchAgents (snapshot, SYNCED, live changes, overflow, shutdown) and lease expiry."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest

from hivewire.v1 import agent_pb2, event_pb2, registry_pb2, registry_pb2_grpc
from hivewire_services.common.errors import ResourceExhausted
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import create_channel
from hivewire_services.registry.server import RegistryServer
from hivewire_services.registry.store import AgentStore
from hivewire_services.registry.watch import ChangeHub
from tests.settings import StackSettings
from tests.waiting import eventually

if TYPE_CHECKING:
    Stub = registry_pb2_grpc.RegistryServiceAsyncStub

WAIT = 5.0


@pytest.fixture
async def registry(settings: StackSettings) -> AsyncIterator[RegistryServer]:
    # A short lease so expiry tests take well under a second of lease time.
    server = RegistryServer(dataclasses.replace(settings, lease_seconds=0.6).registry())
    await server.start("127.0.0.1:0")
    yield server
    await server.shutdown()


@pytest.fixture
async def stub(registry: RegistryServer, settings: StackSettings) -> AsyncIterator[Stub]:
    channel = create_channel(f"127.0.0.1:{registry.port}", settings)
    yield registry_pb2_grpc.RegistryServiceStub(channel)  # type: ignore[misc]
    await channel.close()


async def register(stub: Stub, name: str = "w") -> registry_pb2.RegisterAgentResponse:
    return await stub.RegisterAgent(
        registry_pb2.RegisterAgentRequest(name=name, capabilities=["echo"], max_concurrency=2),
        timeout=5,
    )


async def next_message(call: Any) -> registry_pb2.WatchAgentsResponse:
    message = await asyncio.wait_for(call.read(), WAIT)
    assert message is not grpc.aio.EOF
    return message  # type: ignore[no-any-return]


async def read_until_synced(call: Any) -> list[registry_pb2.WatchAgentsResponse]:
    snapshot = []
    while (message := await next_message(call)).change != registry_pb2.AGENT_CHANGE_SYNCED:
        assert message.change == registry_pb2.AGENT_CHANGE_SNAPSHOT
        snapshot.append(message)
    return snapshot


async def test_watch_sends_snapshot_synced_then_live_changes(stub: Stub) -> None:
    online = await register(stub, "online")
    gone = await register(stub, "gone")
    await stub.DeregisterAgent(
        registry_pb2.DeregisterAgentRequest(
            agent_id=gone.agent.agent_id, agent_token=gone.agent_token
        )
    )
    call = stub.WatchAgents(registry_pb2.WatchAgentsRequest())
    try:
        snapshot = await read_until_synced(call)
        assert [m.agent.agent_id for m in snapshot] == [online.agent.agent_id]
        assert snapshot[0].agent.state == agent_pb2.AGENT_STATE_ONLINE

        fresh = await register(stub, "fresh")
        message = await next_message(call)
        assert message.change == registry_pb2.AGENT_CHANGE_UPSERTED
        assert message.agent.agent_id == fresh.agent.agent_id
        assert message.agent.name == "fresh"
        assert list(message.agent.capabilities) == ["echo"]

        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=fresh.agent.agent_id, agent_token=fresh.agent_token, draining=True
            )
        )
        message = await next_message(call)
        assert message.change == registry_pb2.AGENT_CHANGE_UPSERTED
        assert message.agent.state == agent_pb2.AGENT_STATE_DRAINING

        await stub.DeregisterAgent(
            registry_pb2.DeregisterAgentRequest(
                agent_id=online.agent.agent_id, agent_token=online.agent_token
            )
        )
        message = await next_message(call)
        assert message.change == registry_pb2.AGENT_CHANGE_REMOVED
        assert message.agent.agent_id == online.agent.agent_id
        assert message.agent.state == agent_pb2.AGENT_STATE_OFFLINE
    finally:
        call.cancel()


async def test_lease_expiry_takes_agent_offline(
    stub: Stub, redis: Redis, keys: Keys, registry: RegistryServer
) -> None:
    call = stub.WatchAgents(registry_pb2.WatchAgentsRequest())
    try:
        assert await read_until_synced(call) == []
        reply = await register(stub)
        agent_id = reply.agent.agent_id
        assert (await next_message(call)).change == registry_pb2.AGENT_CHANGE_UPSERTED

        message = await next_message(call)  # arrives once the lease ran out and was swept
        assert message.change == registry_pb2.AGENT_CHANGE_REMOVED
        assert message.agent.agent_id == agent_id
    finally:
        call.cancel()
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=agent_id))
    assert got.agent.state == agent_pb2.AGENT_STATE_OFFLINE
    assert await redis.zscore(keys.leases, agent_id) is None
    assert await redis.ttl(keys.agent(agent_id)) > 0
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    assert [(e.type, e.agent_id) for e in events] == [
        (event_pb2.EVENT_TYPE_AGENT_REGISTERED, agent_id),
        (event_pb2.EVENT_TYPE_AGENT_OFFLINE, agent_id),
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(agent_id=agent_id, agent_token=reply.agent_token)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_expiry_rechecks_the_lease_and_runs_once(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    store = AgentStore(redis, keys, settings)
    registration = await store.register("w", ["echo"], 1, {})
    agent_id = registration.agent.agent_id
    expire_ms = registration.agent.lease_expire_time.ToMilliseconds()
    # A stale sweep (its `now` predates a renewal) changes nothing.
    assert await store.expire_agents([agent_id], expire_ms - 1) == []
    assert (await store.get(agent_id)).state == agent_pb2.AGENT_STATE_ONLINE
    # Two registries sweeping the same expired lease: only one takes it offline.
    first, second = await asyncio.gather(
        store.expire_agents([agent_id], expire_ms + 1),
        store.expire_agents([agent_id], expire_ms + 1),
    )
    assert sorted([first, second]) == [[], [agent_id]]
    events = [decode_entry(i, f).type for i, f in await redis.xrange(keys.events)]
    assert events.count(event_pb2.EVENT_TYPE_AGENT_OFFLINE) == 1


async def test_slow_watcher_is_ended_with_resource_exhausted(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    store = AgentStore(redis, keys, settings)
    hub = ChangeHub(redis, keys, store, queue_size=2, block_ms=100)
    hub.start()
    try:
        sub = await hub.subscribe()
        for i in range(4):
            await store.register(f"w{i}", ["echo"], 1, {})

        await eventually(lambda: sub.ended, within=WAIT, message="the reader overflowing the queue")
        with pytest.raises(ResourceExhausted):
            await sub.get()
    finally:
        await hub.stop()


async def test_shutdown_ends_watch_with_unavailable(stub: Stub, registry: RegistryServer) -> None:
    call = stub.WatchAgents(registry_pb2.WatchAgentsRequest())
    assert await read_until_synced(call) == []
    await registry.shutdown()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(call.read(), WAIT)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
