"""Every role against every public RPC on real servers with HIVEWIRE_AUTH=tokens: no token and
a bad token are UNAUTHENTICATED, a role the method table does not allow is PERMISSION_DENIED,
an allowed role gets past authentication (whatever the empty request then earns)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from hivewire.v1 import agent_service_pb2, auth_pb2, coordinator_pb2, gateway_pb2, registry_pb2
from hivewire_services.common.auth.table import METHOD_ROLES, allowed
from hivewire_services.common.auth.tokens import TokenStore, new_token
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.auth_helpers import DENIALS, ROLE_TOKENS, SERVICE_TOKEN, call, methods
from tests.integration.conftest import MakeStack

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED

GATEWAY_SERVICES = (
    gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"],
    auth_pb2.DESCRIPTOR.services_by_name["AuthService"],
)
COORDINATOR = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"]
REGISTRY = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]


def test_every_method_of_every_service_is_in_the_table() -> None:
    names = {
        f"/{m.containing_service.full_name}/{m.name}"
        for service in (*GATEWAY_SERVICES, COORDINATOR, REGISTRY)
        for m in methods(service)
    }
    assert names - METHOD_ROLES.keys() == set()
    assert not allowed("/hivewire.v1.GatewayService/NoSuchMethod", "admin")


@pytest.fixture
async def tokens(redis: Redis, keys: Keys) -> dict[str, str]:
    store = TokenStore(redis, keys)
    made = {role: (await store.create(f"t-{role}", role))[0] for role in ROLE_TOKENS}
    return {**made, "service": SERVICE_TOKEN}


async def test_every_role_against_every_rpc(make_stack: MakeStack, tokens: dict[str, str]) -> None:
    stack = await make_stack(auth="tokens", service_token=SERVICE_TOKEN)
    addrs = stack.addrs()
    targets = [(addrs["gateway"], s) for s in GATEWAY_SERVICES]
    targets += [(addrs["coordinator"], COORDINATOR), (addrs["registry"], REGISTRY)]
    cases = []
    for addr, service in targets:
        for method in methods(service):
            path = f"/{service.full_name}/{method.name}"
            cases.append((path, None, call(addr, method, None)))
            cases.append((path, "bad", call(addr, method, new_token()[1])))
            for role, token in tokens.items():
                cases.append((path, role, call(addr, method, token)))
    limit = asyncio.Semaphore(16)

    async def bounded(c):  # type: ignore[no-untyped-def]
        async with limit:
            return await c

    codes = await asyncio.gather(*(bounded(c) for _, _, c in cases))
    wrong = []
    for (path, role, _), code in zip(cases, codes, strict=True):
        if role in (None, "bad"):
            want_ok = code == UNAUTHENTICATED
        elif allowed(path, role):
            want_ok = code not in DENIALS
        else:
            want_ok = code == PERMISSION_DENIED
        if not want_ok:
            wrong.append((path, role, code.name))
    assert sorted(set(wrong), key=str) == []
    # The coordinator and the registry take no client, viewer or agent call (agents only
    # register and renew themselves).
    assert not any(
        allowed(f"/{COORDINATOR.full_name}/{m.name}", r)
        for m in methods(COORDINATOR)
        for r in ("client", "viewer", "agent")
    )
    assert {
        m.name for m in methods(REGISTRY) if allowed(f"/{REGISTRY.full_name}/{m.name}", "agent")
    } == {"RegisterAgent", "SendHeartbeat", "DeregisterAgent"}
