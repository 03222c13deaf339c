"""RegistryService over a real channel: register, heartbeat, deregister, get, list, errors."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
import pytest
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.v1 import agent_pb2, event_pb2, registry_pb2, registry_pb2_grpc
from hivewire_services.common.errors import error_info, field_violations
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import create_channel
from hivewire_services.registry.server import SERVICE_NAME, RegistryServer
from tests.integration.registry_helpers import list_agents, register
from tests.settings import StackSettings

if TYPE_CHECKING:
    Stub = registry_pb2_grpc.RegistryServiceAsyncStub


@pytest.fixture
async def registry(settings: StackSettings) -> AsyncIterator[RegistryServer]:
    server = RegistryServer(settings.registry())
    await server.start("127.0.0.1:0")
    yield server
    await server.shutdown()


@pytest.fixture
async def channel(
    registry: RegistryServer, settings: StackSettings
) -> AsyncIterator[grpc.aio.Channel]:
    ch = create_channel(f"127.0.0.1:{registry.port}", settings)
    yield ch
    await ch.close()


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Stub:
    return registry_pb2_grpc.RegistryServiceStub(channel)  # type: ignore[return-value]


def rich_status(exc: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The google.rpc.Status carried in the trailing metadata of a failed call."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError(f"no rich status on {exc.code()}: {exc.details()}")


def reason(exc: grpc.aio.AioRpcError) -> str:
    info = error_info(rich_status(exc))
    assert info is not None
    return info.reason


async def test_register_writes_agent_lease_inbox_change_and_event(
    stub: Stub, redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    reply = await register(stub, "alpha", ("echo", "sum", "echo"), 8, {"zone": "eu"})
    agent = reply.agent
    assert len(agent.agent_id) == 32
    assert agent.name == "alpha"
    assert list(agent.capabilities) == ["echo", "sum"]
    assert agent.max_concurrency == 8
    assert dict(agent.labels) == {"zone": "eu"}
    assert agent.state == agent_pb2.AGENT_STATE_ONLINE
    assert reply.lease_duration.ToMilliseconds() == int(settings.lease_seconds * 1000)
    assert reply.inbox_stream == keys.inbox(agent.agent_id)
    assert reply.inbox_group == "agent"
    assert reply.results_stream == keys.results
    assert len(reply.agent_token) >= 32

    stored = await redis.hgetall(keys.agent(agent.agent_id))
    assert (
        stored[b"token_sha256"] == hashlib.sha256(reply.agent_token.encode()).hexdigest().encode()
    )
    assert reply.agent_token.encode() not in stored.values()
    assert stored[b"capabilities"] == b"echo,sum"
    assert await redis.zscore(keys.leases, agent.agent_id) == int(stored[b"lease_expire_ms"])
    assert await redis.zscore(keys.live_agents, agent.agent_id) == int(stored[b"seq"])
    groups = await redis.xinfo_groups(keys.inbox(agent.agent_id))
    assert [g["name"] for g in groups] == [b"agent"]
    [(_, change)] = await redis.xrange(keys.agent_changes)
    assert change == {
        b"agent_id": agent.agent_id.encode(),
        b"change": str(registry_pb2.AGENT_CHANGE_UPSERTED).encode(),
    }
    [(entry_id, fields)] = await redis.xrange(keys.events)
    event = decode_entry(entry_id, fields)
    assert event.type == event_pb2.EVENT_TYPE_AGENT_REGISTERED
    assert event.agent_id == agent.agent_id


async def test_get_agent_and_not_found(stub: Stub) -> None:
    reply = await register(stub, "beta")
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=reply.agent.agent_id))
    assert got.agent == reply.agent
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id="0" * 32))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert reason(err.value) == "AGENT_NOT_FOUND"


async def test_list_pages_in_registration_order(stub: Stub) -> None:
    ids = [(await register(stub, f"w{i}")).agent.agent_id for i in range(5)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await list_agents(stub, page_size=2, page_token=token)
        pages += 1
        seen.extend(a.agent_id for a in page.agents)
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    assert pages == 3


async def test_list_filters_by_capability_and_state(stub: Stub) -> None:
    echo = await register(stub, "e", ("echo",))
    both = await register(stub, "b", ("echo", "gpu"))
    gpu = await register(stub, "g", ("gpu",))
    await stub.SendHeartbeat(
        registry_pb2.SendHeartbeatRequest(
            agent_id=gpu.agent.agent_id, agent_token=gpu.agent_token, draining=True
        )
    )
    page = await list_agents(stub, capability="gpu")
    assert [a.agent_id for a in page.agents] == [both.agent.agent_id, gpu.agent.agent_id]
    page = await list_agents(stub, state=agent_pb2.AGENT_STATE_ONLINE)
    assert [a.agent_id for a in page.agents] == [echo.agent.agent_id, both.agent.agent_id]
    page = await list_agents(stub, capability="gpu", state=agent_pb2.AGENT_STATE_DRAINING)
    assert [a.agent_id for a in page.agents] == [gpu.agent.agent_id]
    assert page.next_page_token == ""


async def test_list_skips_and_prunes_expired_hashes(stub: Stub, redis: Redis, keys: Keys) -> None:
    first = await register(stub, "gone")
    second = await register(stub, "kept")
    await redis.delete(keys.agent(first.agent.agent_id))
    page = await list_agents(stub)
    assert [a.agent_id for a in page.agents] == [second.agent.agent_id]
    assert await redis.zscore(keys.live_agents, first.agent.agent_id) is None


async def test_list_drops_offline_agents_left_in_the_live_index(
    stub: Stub, redis: Redis, keys: Keys
) -> None:
    """Before the offline index existed, the `agents` index kept offline agents too."""
    old = await register(stub, "old")
    live = await register(stub, "live")
    await stub.DeregisterAgent(
        registry_pb2.DeregisterAgentRequest(
            agent_id=old.agent.agent_id, agent_token=old.agent_token
        )
    )
    await redis.zadd(keys.live_agents, {old.agent.agent_id: 1})  # as an older registry left it
    await redis.zrem(keys.offline_agents, old.agent.agent_id)
    page = await list_agents(stub)
    assert [a.agent_id for a in page.agents] == [live.agent.agent_id]
    assert await redis.zscore(keys.live_agents, old.agent.agent_id) is None


async def test_in_flight_comes_from_agent_load(stub: Stub, redis: Redis, keys: Keys) -> None:
    reply = await register(stub)
    await redis.hset(keys.agent_load, reply.agent.agent_id, 3)
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=reply.agent.agent_id))
    assert got.agent.in_flight == 3
    page = await list_agents(stub)
    assert [a.in_flight for a in page.agents] == [3]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"capabilities": []}, "capabilities"),
        ({"capabilities": [f"c{i}" for i in range(65)]}, "capabilities"),
        ({"capabilities": ["echo", "Bad Name"]}, "capabilities[1]"),
        ({"capabilities": ["a,b"]}, "capabilities[0]"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 10_001}, "max_concurrency"),
        ({"labels": {"bad key!": "v"}}, "labels"),
    ],
)
async def test_register_rejects_invalid_input(
    stub: Stub, redis: Redis, keys: Keys, fields: dict[str, object], field: str
) -> None:
    request = {"name": "w", "capabilities": ["echo"], "max_concurrency": 1, **fields}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RegisterAgent(registry_pb2.RegisterAgentRequest(**request))  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(rich_status(err.value))] == [field]
    assert await redis.exists(keys.live_agents) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"page_token": "garbage!"}, "page_token"),
        ({"page_token": "YWdlbnRzOng"}, "page_token"),
        ({"page_size": 1001}, "page_size"),
        ({"capability": "NO"}, "capability"),
        ({"state": 42}, "state"),
    ],
)
async def test_list_rejects_invalid_input(
    stub: Stub, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await list_agents(stub, **fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(rich_status(err.value))] == [field]


async def test_heartbeat_renews_lease(stub: Stub, redis: Redis, keys: Keys) -> None:
    reply = await register(stub)
    agent_id = reply.agent.agent_id
    before = await redis.zscore(keys.leases, agent_id)
    assert before is not None
    await redis.zadd(keys.leases, {agent_id: before - 60_000})
    beat = await stub.SendHeartbeat(
        registry_pb2.SendHeartbeatRequest(
            agent_id=agent_id, agent_token=reply.agent_token, in_flight=1
        )
    )
    expire_ms = beat.lease_expire_time.ToMilliseconds()
    assert expire_ms >= before
    assert list(beat.cancel_task_ids) == []
    assert await redis.zscore(keys.leases, agent_id) == expire_ms
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=agent_id))
    assert got.agent.lease_expire_time.ToMilliseconds() == expire_ms
    assert (
        got.agent.last_heartbeat_time.ToMilliseconds() >= reply.agent.register_time.ToMilliseconds()
    )


@pytest.mark.parametrize(
    ("agent_id", "token", "code", "why"),
    [
        (None, "wrong", grpc.StatusCode.UNAUTHENTICATED, "BAD_AGENT_TOKEN"),
        (None, "", grpc.StatusCode.UNAUTHENTICATED, "BAD_AGENT_TOKEN"),
        ("f" * 32, "any", grpc.StatusCode.NOT_FOUND, "AGENT_NOT_FOUND"),
        ("not-an-id", "any", grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ],
)
async def test_heartbeat_and_deregister_check_identity(
    stub: Stub, agent_id: str | None, token: str, code: grpc.StatusCode, why: str
) -> None:
    reply = await register(stub)
    agent_id = agent_id or reply.agent.agent_id
    calls = (
        stub.SendHeartbeat(registry_pb2.SendHeartbeatRequest(agent_id=agent_id, agent_token=token)),
        stub.DeregisterAgent(
            registry_pb2.DeregisterAgentRequest(agent_id=agent_id, agent_token=token)
        ),
    )
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == code
        assert reason(err.value) == why
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=reply.agent.agent_id))
    assert got.agent.state == agent_pb2.AGENT_STATE_ONLINE


async def test_draining_switches_state_once(stub: Stub, redis: Redis, keys: Keys) -> None:
    reply = await register(stub)
    request = registry_pb2.SendHeartbeatRequest(
        agent_id=reply.agent.agent_id, agent_token=reply.agent_token, draining=True
    )
    await stub.SendHeartbeat(request)
    await stub.SendHeartbeat(request)
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=reply.agent.agent_id))
    assert got.agent.state == agent_pb2.AGENT_STATE_DRAINING
    changes = [int(f[b"change"]) for _, f in await redis.xrange(keys.agent_changes)]
    assert changes == [registry_pb2.AGENT_CHANGE_UPSERTED] * 2
    assert await redis.zscore(keys.leases, reply.agent.agent_id) is not None


async def test_deregister_is_idempotent_and_final(stub: Stub, redis: Redis, keys: Keys) -> None:
    reply = await register(stub)
    agent_id = reply.agent.agent_id
    request = registry_pb2.DeregisterAgentRequest(agent_id=agent_id, agent_token=reply.agent_token)
    await stub.DeregisterAgent(request)
    await stub.DeregisterAgent(request)
    got = await stub.GetAgent(registry_pb2.GetAgentRequest(agent_id=agent_id))
    assert got.agent.state == agent_pb2.AGENT_STATE_OFFLINE
    assert await redis.zscore(keys.leases, agent_id) is None
    assert 0 < await redis.pttl(keys.agent(agent_id)) <= 300_000  # the default retention
    assert await redis.zscore(keys.live_agents, agent_id) is None
    assert await redis.zscore(keys.offline_agents, agent_id) is not None
    changes = [int(f[b"change"]) for _, f in await redis.xrange(keys.agent_changes)]
    assert changes == [registry_pb2.AGENT_CHANGE_UPSERTED, registry_pb2.AGENT_CHANGE_REMOVED]
    events = [decode_entry(i, f).type for i, f in await redis.xrange(keys.events)]
    assert events == [
        event_pb2.EVENT_TYPE_AGENT_REGISTERED,
        event_pb2.EVENT_TYPE_AGENT_DEREGISTERED,
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(agent_id=agent_id, agent_token=reply.agent_token)
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(err.value) == "AGENT_OFFLINE"


async def test_health_reports_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
