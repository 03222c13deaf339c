"""Services on a Redis with Hivewire's ACL users: each serves as its own user, and every user,
an agent's included, is refused outside its commands and keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from hivewire.agent import TaskContext
from hivewire.client import Client
from hivewire.core.api_tokens import StaticToken, dump_static_tokens, new_token
from hivewire.core.redis_users import agent_user_name, url_as, user_name
from hivewire.v1 import event_pb2, registry_pb2, task_pb2, workflow_pb2
from hivewire_services.common.auth.audit import Audit
from hivewire_services.common.auth.static_tokens import import_static_tokens
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.keys import INBOX_GROUP, Keys
from hivewire_services.registry.server import RegistryServer
from tests.integration.acl_stack import AclRedis, AclStack, acl_redis, acl_stack
from tests.integration.registry_helpers import deregister, register, registry_stub
from tests.integration.stack import LOOPBACK_ANY, NOT_SERVING
from tests.settings import stack_settings
from tests.waiting import eventually, health

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def redis_acl(tmp_path: Path, namespace: str) -> Iterator[AclRedis]:
    with acl_redis(tmp_path, namespace) as server:
        yield server


@pytest.fixture
async def stack(redis_acl: AclRedis, namespace: str) -> AsyncIterator[AclStack]:
    settings = stack_settings(
        redis_url=redis_acl.server.url,
        namespace=namespace,
        agent_redis_users=1,
        lease_seconds=2.0,
        lease_sweep_interval=0.2,
        retry_initial_backoff=0.05,
        retry_max_backoff=0.2,
    )
    async with acl_stack(redis_acl, settings) as s:
        yield s


async def acl_log(admin: aioredis.Redis) -> list[dict[Any, Any]]:
    return list(await admin.acl_log())


async def refused(call: Any) -> str:
    with pytest.raises((NoPermissionError, ResponseError)) as caught:
        await call
    assert "permission" in str(caught.value), caught.value
    return str(caught.value)


async def test_each_service_serves_as_its_own_user_through_a_full_round_trip(
    stack: AclStack,
) -> None:
    admin = stack.redis.client()
    for name in ("direct", "remote"):
        agent = stack.agent(name, transport="redis" if name == "direct" else "grpc")

        @agent.handler(name)
        async def handle(ctx: TaskContext) -> Any:
            payload = ctx.json() or {}
            if payload.get("fail"):
                raise RuntimeError("no")
            return {"by": payload.get("n", 0)}

        await agent.start()
    async with stack.client() as client:
        await eventually(lambda: seen_agents(stack, 2), message="the coordinator seeing both")
        events = asyncio.ensure_future(first_events(client, 3))
        done = [await client.submit_and_wait(n, {"n": 1}, timeout=30) for n in ("direct", "remote")]
        assert [t.state for t in done] == [task_pb2.TASK_STATE_SUCCEEDED] * 2
        wf = await client.submit_workflow(
            [
                {"id": "a", "capability": "direct", "payload": {"n": 2}},
                {"id": "b", "capability": "remote", "depends_on": ["a"]},
            ]
        )
        assert (await client.wait_workflow(wf.workflow_id, timeout=30)).state == (
            workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        )
        failed = await client.submit_and_wait("direct", {"fail": 1}, max_attempts=1, timeout=30)
        assert failed.state == task_pb2.TASK_STATE_FAILED
        [letter], _ = await client.list_dead_letters()
        again = await client.retry_dead_letter(letter.dead_letter_id)
        assert again.task_id == failed.task_id
        assert len(await events) == 3
    users = {c["user"] for c in await admin.client_list()}
    names = {
        f"hivewire.{stack.redis.namespace}.{r}" for r in ("registry", "coordinator", "gateway")
    }
    assert names <= users
    direct = stack.agents[0]
    assert agent_user_name(stack.redis.namespace, direct.agent_id) in users
    assert await acl_log(admin) == []  # nothing any service or agent did was refused
    await admin.aclose()


def seen_agents(stack: AclStack, n: int) -> bool:
    scheduler = stack.coordinator.scheduler
    return scheduler is not None and len(scheduler.cache.agents) >= n


async def first_events(client: Client, n: int) -> list[event_pb2.Event]:
    seen = []
    async for event in client.events():
        seen.append(event)
        if len(seen) == n:
            return seen
    return seen


async def test_each_service_user_is_refused_outside_its_grant(stack: AclStack) -> None:
    keys = Keys(stack.redis.namespace)
    task = keys.task("f" * 32)
    gateway, coordinator = stack.redis.client("gateway"), stack.redis.client("coordinator")
    registry, hooks = stack.redis.client("registry"), stack.redis.client("hooks")
    try:
        # The gateway reads task state but never writes it (its only scripts are the tokens').
        assert await gateway.hgetall(task) == {}
        await refused(gateway.hset(task, "state", "1"))
        await refused(gateway.evalsha("0" * 40, 1, task))
        await refused(gateway.xadd(keys.events, {"x": "1"}))
        await refused(gateway.zadd(keys.pending("echo"), {"t": 1}))
        # The coordinator owns task state, not agents, users or the server.
        await coordinator.hset(task, "state", "1")
        await refused(coordinator.hset(keys.agent("f" * 32), "state", "1"))
        await refused(coordinator.execute_command("ACL", "SETUSER", "x", "on"))
        await refused(coordinator.config_get("requirepass"))
        await refused(coordinator.keys("*"))
        await refused(coordinator.flushall())
        await refused(coordinator.hset("somebody-else:key", "a", "1"))
        # The registry owns agents; it may only read tasks.
        await refused(registry.hset(task, "state", "2"))
        await refused(registry.zadd(keys.pending("echo"), {"t": 1}))
        # The hooks runner owns hook deliveries; task state is read-only to it.
        await refused(hooks.hset(task, "state", "2"))
        await refused(hooks.hset(keys.agent_load, "a", "1"))
        # Nobody gets in without a user.
        with pytest.raises(AuthenticationError):
            await aioredis.Redis.from_url(stack.redis.server.url).ping()
    finally:
        for client in (gateway, coordinator, registry, hooks):
            await client.aclose()


async def test_an_agent_user_reaches_only_its_inbox_and_appends_results(
    stack: AclStack,
) -> None:
    keys = Keys(stack.redis.namespace)
    async with registry_stub(stack.settings) as stub:
        me, other = await register(stub, "me"), await register(stub, "other")
        assert me.redis_username == agent_user_name(stack.redis.namespace, me.agent.agent_id)
        agent = as_agent(stack, me)
        try:
            read = await agent.xreadgroup(INBOX_GROUP, "me", {me.inbox_stream: ">"}, count=1)
            assert read in ([], [[me.inbox_stream.encode(), []]])
            await agent.xadd(me.results_stream, {"result": b"x"})
            await refused(agent.xreadgroup(INBOX_GROUP, "me", {other.inbox_stream: ">"}))
            await refused(agent.xadd(me.inbox_stream, {"envelope": b"forged"}))
            await refused(agent.xadd(other.inbox_stream, {"envelope": b"forged"}))
            await refused(agent.xrange(me.results_stream))
            await refused(agent.xdel(me.results_stream, "0-1"))
            await refused(agent.hset(keys.task("f" * 32), "state", "4"))
            await refused(agent.hgetall(keys.agent(me.agent.agent_id)))
            await refused(agent.xadd(keys.events, {"x": "1"}))
            await deregister(stub, me)
            # Its user is gone: the open connection is closed and a new one is refused.
            with pytest.raises((AuthenticationError, ConnectionError, OSError)):
                await agent.ping()
            with pytest.raises(AuthenticationError):
                await as_agent(stack, me).ping()
        finally:
            await agent.aclose()


def as_agent(stack: AclStack, reply: registry_pb2.RegisterAgentResponse) -> aioredis.Redis:
    """A client authenticating as the agent's user, which fails at once when refused."""
    return aioredis.Redis(
        port=stack.redis.server.port,
        username=reply.redis_username,
        password=reply.agent_token,
        retry=Retry(NoBackoff(), 0),
    )


async def agent_users(admin: aioredis.Redis, namespace: str) -> set[str]:
    prefix = agent_user_name(namespace, "")
    return {u for u in await admin.acl_users() if u.startswith(prefix)}


async def test_agent_users_follow_the_live_agents(stack: AclStack) -> None:
    """Removed when a lease expires; remade (a failover to a replica loses them) and pruned
    by the sync, which leaves other namespaces' users alone."""
    ns = stack.redis.namespace
    admin = stack.redis.client()
    assert stack.registry.agent_users is not None
    async with registry_stub(stack.settings) as stub:
        silent = await register(stub, "silent")  # never heartbeats: its 2 s lease runs out
        await eventually(
            lambda: agent_users_without(admin, ns, silent.redis_username),
            message="the expired agent's user removed",
        )
        live: registry_pb2.RegisterAgentResponse = await register(stub, "live")
        await admin.execute_command("ACL", "DELUSER", live.redis_username)
        stale = agent_user_name(ns, "e" * 32)
        elsewhere = agent_user_name(ns + "x", "e" * 32)
        for name in (stale, elsewhere):
            await admin.execute_command("ACL", "SETUSER", name, "on", ">pw")
        heartbeat = asyncio.ensure_future(keep_alive(stub, live))
        try:
            assert await stack.registry.agent_users.sync() == (1, 1)
            assert await agent_users(admin, ns) == {live.redis_username}
            assert elsewhere in await admin.acl_users()
            restored = aioredis.Redis(
                port=stack.redis.server.port,
                username=live.redis_username,
                password=live.agent_token,
            )
            assert await restored.ping()
            await restored.aclose()
        finally:
            heartbeat.cancel()
    await admin.aclose()


async def agent_users_without(admin: aioredis.Redis, namespace: str, name: str) -> bool:
    return name not in await agent_users(admin, namespace)


async def keep_alive(stub: Any, reply: registry_pb2.RegisterAgentResponse) -> None:
    while True:
        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=reply.agent.agent_id, agent_token=reply.agent_token
            ),
            timeout=5,
        )
        await asyncio.sleep(0.5)


async def test_the_aof_replays_scripts_and_transactions_under_the_acl_file(
    tmp_path: Path, namespace: str
) -> None:
    """Redis 7.0 replays MULTI/EXEC from the AOF with the default user's rights: the ACL file
    keeps them (the user itself is off), or a restart would drop every script's writes."""
    with acl_redis(tmp_path, namespace, appendonly=True) as server:
        admin = server.client()
        # Two writes each: Redis logs a lone write without MULTI/EXEC.
        await admin.eval("redis.call('SET', 'a1', 's') redis.call('SET', 'a2', 's')", 0)
        async with admin.pipeline(transaction=True) as pipe:
            await pipe.set("b1", "m").set("b2", "m").execute()
        await admin.aclose()
        server.server.kill()
        server.server.start()
        admin = server.client()
        assert await admin.mget("a1", "a2", "b1", "b2") == [b"s", b"s", b"m", b"m"]
        await admin.aclose()
        with pytest.raises(AuthenticationError):
            await aioredis.Redis(
                port=server.server.port,
                username="default",
                password="",
                retry=Retry(NoBackoff(), 0),
            ).ping()


async def test_a_wrong_password_keeps_a_service_not_serving_and_says_why(
    redis_acl: AclRedis, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = url_as(redis_acl.server.url, user_name(namespace, "registry"), "wrong-s3cret")
    registry = RegistryServer(stack_settings(redis_url=url, namespace=namespace).registry())
    port = await registry.start(LOOPBACK_ANY)
    try:
        assert await health(f"127.0.0.1:{port}") == NOT_SERVING
        said = "refused this service's user and password"
        await eventually(lambda: said in caplog.text, message="the reason logged")
        assert f"redis://hivewire.{namespace}.registry:***@127.0.0.1:" in caplog.text
        assert "wrong-s3cret" not in caplog.text
    finally:
        await registry.shutdown()


async def test_the_gateway_user_administers_tokens_and_the_others_only_check_them(
    stack: AclStack, tmp_path: Path
) -> None:
    keys = Keys(stack.redis.namespace)
    gateway, coordinator = stack.redis.client("gateway"), stack.redis.client("coordinator")
    try:
        admin_store = TokenStore(gateway, keys)
        token, _ = await admin_store.create("ci", "client")
        assert [r.name for r in await admin_store.list()] == ["ci"]
        checking = TokenStore(coordinator, keys)
        assert (await checking.verify(token)) is not None
        await Audit(coordinator, keys, "coordinator").denied("/x/Y", "UNAUTHENTICATED", "test")
        await refused(checking.create("other", "admin"))
        await refused(coordinator.hset(keys.auth_token_names, "x", "1"))
        await admin_store.revoke("ci")
        assert (await checking.verify(token)) is None
        assert await gateway.xlen(keys.auth_audit) == 1
        # The static token file: imported, then dropped from the file, as the gateway's user.
        bot = new_token()[1]
        path = tmp_path / "tokens.json"
        path.write_text(dump_static_tokens([StaticToken.of("bot", "agent", bot)]))
        assert await import_static_tokens(gateway, keys, str(path)) == 1
        assert (await checking.verify(bot)) is not None
        path.write_text(dump_static_tokens([]))
        assert await import_static_tokens(gateway, keys, str(path)) == 1
        assert (await checking.verify(bot)) is None
    finally:
        for client in (gateway, coordinator):
            await client.aclose()
