"""Tokens on real servers (HIVEWIRE_AUTH=tokens): the gateway acting for its callers with the
service token, revocation, token administration errors, agent token capabilities, agents bound
to the credential that registered them, and the audit trail of denials."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from hivewire.agent import Agent
from hivewire.client import Client
from hivewire.core.tls import PLAINTEXT, aio_channel
from hivewire.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    coordinator_pb2,
    coordinator_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
)
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import ON_BEHALF_OF_METADATA, Principal
from hivewire_services.common.redis import Redis
from tests.integration.auth_helpers import SERVICE_TOKEN
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.waiting import eventually

CODE = grpc.StatusCode


@pytest.fixture
async def secured(make_stack: MakeStack) -> Stack:
    return await make_stack(auth="tokens", service_token=SERVICE_TOKEN, auth_cache_seconds=0.2)


@pytest.fixture
def store(redis: Redis, keys: Keys) -> TokenStore:
    return TokenStore(redis, keys)


async def status_of(call: object) -> CODE:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return CODE.OK


async def test_client_token_submits_through_the_gateway_and_revoke_stops_it(
    secured: Stack, store: TokenStore
) -> None:
    admin, _ = await store.create("ops", "admin")
    token, _ = await store.create("acme-ci", "client")
    async with Client(secured.gateway_addr, tls=PLAINTEXT, token=token) as client:
        task = await client.submit("echo", {"n": 1})
        assert (await client.get(task.task_id)).task_id == task.task_id
    async with aio_channel(secured.gateway_addr, PLAINTEXT, token=admin) as channel:
        await auth_pb2_grpc.AuthServiceStub(channel).RevokeToken(
            auth_pb2.RevokeTokenRequest(name="acme-ci"), timeout=5
        )
    async with Client(secured.gateway_addr, tls=PLAINTEXT, token=token) as client:

        async def refused() -> bool:
            return await status_of(client.get(task.task_id)) == CODE.UNAUTHENTICATED

        await eventually(refused, within=5.0)  # the cache holds a token 0.2 s here


async def test_token_administration_errors(secured: Stack, store: TokenStore) -> None:
    admin, _ = await store.create("ops", "admin")
    async with aio_channel(secured.gateway_addr, PLAINTEXT, token=admin) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        made = await stub.CreateToken(
            auth_pb2.CreateTokenRequest(name="w1", role="agent", capabilities=["echo"]), timeout=5
        )
        assert made.token.startswith("hw_") and made.info.tenant == "w1"
        with pytest.raises(grpc.aio.AioRpcError) as dup:
            await stub.CreateToken(auth_pb2.CreateTokenRequest(name="w1", role="client"))
        assert dup.value.code() == CODE.ALREADY_EXISTS
        for bad, field in (
            (auth_pb2.CreateTokenRequest(name="x", role="root"), "role"),
            (auth_pb2.CreateTokenRequest(name="x", role="client", tenant="a b"), "tenant"),
            (auth_pb2.CreateTokenRequest(name="x", role="client", capabilities=["e"]), "capab"),
            (auth_pb2.CreateTokenRequest(name="x", role="agent", capabilities=["E!"]), "capab"),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.CreateToken(bad, timeout=5)
            assert refused.value.code() == CODE.INVALID_ARGUMENT
            assert field in (refused.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.RevokeToken(auth_pb2.RevokeTokenRequest(name="nobody"), timeout=5)
        assert missing.value.code() == CODE.NOT_FOUND
        listed = await stub.ListTokens(auth_pb2.ListTokensRequest(), timeout=5)
        assert {t.name for t in listed.tokens} >= {"ops", "w1"}
        assert made.token not in str(listed)


async def test_on_behalf_of_is_honoured_from_services_only(
    secured: Stack, store: TokenStore
) -> None:
    admin, _ = await store.create("ops", "admin")
    acting = Principal("acme-ci", "client", "acme").encode()
    request = coordinator_pb2.CoordinatorServiceListTasksRequest()
    for token, code in ((SERVICE_TOKEN, CODE.OK), (admin, CODE.PERMISSION_DENIED)):
        async with aio_channel(secured.addrs()["coordinator"], PLAINTEXT, token=token) as ch:
            stub = coordinator_pb2_grpc.CoordinatorServiceStub(ch)
            call = stub.ListTasks(request, metadata=((ON_BEHALF_OF_METADATA, acting),), timeout=5)
            assert await status_of(call) == code


async def test_agent_token_capabilities_and_identity(
    secured: Stack, store: TokenStore, redis: Redis, keys: Keys
) -> None:
    token_a, _ = await store.create("worker-a", "agent", capabilities=["echo"])
    token_b, _ = await store.create("worker-b", "agent")
    registry = secured.addrs()["registry"]
    async with aio_channel(registry, PLAINTEXT, token=token_a) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RegisterAgent(
                registry_pb2.RegisterAgentRequest(
                    name="a", capabilities=["echo", "shell"], max_concurrency=1
                ),
                timeout=5,
            )
        assert refused.value.code() == CODE.PERMISSION_DENIED
        assert "'shell'" in (refused.value.details() or "")
        mine = await stub.RegisterAgent(
            registry_pb2.RegisterAgentRequest(name="a", capabilities=["echo"], max_concurrency=1),
            timeout=5,
        )
        assert mine.agent.principal == "worker-a"
        beat = registry_pb2.SendHeartbeatRequest(
            agent_id=mine.agent.agent_id, agent_token=mine.agent_token
        )
        await stub.SendHeartbeat(beat, timeout=5)
    # Worker B holds A's agent id and secret, yet may not act as A: not on the registry...
    async with aio_channel(registry, PLAINTEXT, token=token_b) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        assert await status_of(stub.SendHeartbeat(beat, timeout=5)) == CODE.PERMISSION_DENIED
        gone = registry_pb2.DeregisterAgentRequest(
            agent_id=mine.agent.agent_id, agent_token=mine.agent_token
        )
        assert await status_of(stub.DeregisterAgent(gone, timeout=5)) == CODE.PERMISSION_DENIED
    # ... nor by resuming A's identity on an AgentService stream of the gateway.
    async with aio_channel(secured.gateway_addr, PLAINTEXT, token=token_b) as channel:
        hello = agent_service_pb2.AgentHello(
            name="a",
            capabilities=["echo"],
            max_concurrency=1,
            resume_agent_id=mine.agent.agent_id,
            resume_agent_token=mine.agent_token,
        )
        stream = agent_service_pb2_grpc.AgentServiceStub(channel).Connect(
            iter([agent_service_pb2.ConnectRequest(hello=hello)]), timeout=5
        )
        with pytest.raises(grpc.aio.AioRpcError) as resumed:
            async for _ in stream:
                pass
        assert resumed.value.code() == CODE.PERMISSION_DENIED
    assert await redis.hget(keys.agent(mine.agent.agent_id), "owner") == b"worker-a"
    entries = await redis.xrange(keys.auth_audit)
    denied = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
    assert any(e["principal"] == "worker-b" and e["code"] == "PERMISSION_DENIED" for e in denied)
    assert any(e["principal"].startswith("worker-b (via") for e in denied)
    assert any("'shell'" in e["reason"] for e in denied)
    heartbeat = "/hivewire.v1.RegistryService/SendHeartbeat"
    counted = REGISTRY.get_sample_value(
        "hivewire_auth_denied_total", {"method": heartbeat, "code": "PERMISSION_DENIED"}
    )
    assert counted is not None and counted >= 1
    admin, _ = await store.create("ops", "admin")
    async with aio_channel(secured.gateway_addr, PLAINTEXT, token=admin) as channel:
        audit = await auth_pb2_grpc.AuthServiceStub(channel).ListAuditEntries(
            auth_pb2.ListAuditEntriesRequest(limit=1000), timeout=5
        )
    assert len(audit.entries) == len(denied)
    assert any(e.method == heartbeat and e.principal == "worker-b" for e in audit.entries)


async def test_an_agent_with_a_narrow_token_cannot_connect_for_more(
    secured: Stack, store: TokenStore
) -> None:
    token, _ = await store.create("narrow", "agent", capabilities=["echo"])
    ok = Agent(
        "ok", transport="grpc", gateway_addr=secured.gateway_addr, tls=PLAINTEXT, token=token
    )
    ok.handler("echo")(lambda ctx: ctx.payload)
    secured.agents.append(ok)
    await ok.start()
    async with Client(
        secured.gateway_addr, tls=PLAINTEXT, token=(await store.create("c", "client"))[0]
    ) as client:
        task = await client.submit("echo", {"x": 1})
        done = await client.wait(task.task_id, timeout=20)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED


async def test_tokens_carry_their_tenant_through_the_gateway(
    secured: Stack, store: TokenStore
) -> None:
    acme, _ = await store.create("acme-ci", "client", "acme")
    other, _ = await store.create("globex-ci", "client", "globex")
    admin, _ = await store.create("ops", "admin")
    async with Client(secured.gateway_addr, tls=PLAINTEXT, token=acme) as client:
        task = await client.submit("echo", {"n": 1})
        assert task.tenant == "acme"
    async with Client(secured.gateway_addr, tls=PLAINTEXT, token=other) as client:
        assert await status_of(client.get(task.task_id)) == CODE.NOT_FOUND
    async with Client(secured.gateway_addr, tls=PLAINTEXT, token=admin) as client:
        assert (await client.get(task.task_id)).tenant == "acme"
