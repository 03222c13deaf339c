"""Tenant isolation through the real gateway with tokens on (HIVEWIRE_AUTH=tokens): a client of
one tenant cannot get, list, cancel or watch another tenant's tasks and workflows, its event
stream and stats carry only its own work, and an admin sees both. An agent's token reaches
only the child tasks it spawned."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest

from hivewire.agent import Agent, TaskContext
from hivewire.client import Client
from hivewire.core.tls import PLAINTEXT
from hivewire.v1 import gateway_pb2_grpc, task_pb2
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.auth_helpers import SERVICE_TOKEN
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.waiting import eventually

CODE = grpc.StatusCode


@pytest.fixture
async def secured(make_stack: MakeStack) -> Stack:
    return await make_stack(auth="tokens", service_token=SERVICE_TOKEN, auth_cache_seconds=0.2)


async def code_of(call: object) -> CODE:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return CODE.OK


async def test_tenants_see_and_change_only_their_own_work(
    secured: Stack, redis: Redis, keys: Keys
) -> None:
    store = TokenStore(redis, keys)
    acme_token, _ = await store.create("acme-ci", "client", "acme")
    globex_token, _ = await store.create("globex-ci", "client", "globex")
    viewer_token, _ = await store.create("globex-dash", "viewer", "globex")
    admin_token, _ = await store.create("ops", "admin")
    addr = secured.gateway_addr
    async with (
        Client(addr, tls=PLAINTEXT, token=acme_token) as acme,
        Client(addr, tls=PLAINTEXT, token=globex_token) as globex,
        Client(addr, tls=PLAINTEXT, token=viewer_token) as viewer,
        Client(addr, tls=PLAINTEXT, token=admin_token) as admin,
    ):
        # globex watches its events from before anything is submitted.
        seen: list[str] = []

        async def watch() -> None:
            async for event in globex.events():
                if event.task_id:
                    seen.append(event.task_id)

        watcher = asyncio.create_task(watch())
        try:
            secret = await acme.submit("nobody-runs-this", {"secret": "acme only"})
            ours = await globex.submit("nobody-runs-this", {"n": 1})
            flow = await acme.submit_workflow([{"id": "a", "capability": "nobody-runs-this"}])
            assert secret.tenant == "acme" and ours.tenant == "globex" and flow.tenant == "acme"

            for other in (globex, viewer):
                assert await code_of(other.get(secret.task_id)) == CODE.NOT_FOUND
                assert await code_of(other.get_workflow(flow.workflow_id)) == CODE.NOT_FOUND
                listed = [t.task_id async for t in other.iter_tasks()]
                assert secret.task_id not in listed and ours.task_id in listed
                workflows, _ = await other.list_workflows()
                assert flow.workflow_id not in [w.workflow_id for w in workflows]
            assert await code_of(globex.cancel(secret.task_id)) == CODE.NOT_FOUND
            assert await code_of(globex.cancel_workflow(flow.workflow_id)) == CODE.NOT_FOUND
            assert await code_of(viewer.cancel(ours.task_id)) == CODE.PERMISSION_DENIED
            assert (await acme.get(secret.task_id)).state == task_pb2.TASK_STATE_PENDING

            # The admin sees both tenants' work.
            everything = {t.task_id async for t in admin.iter_tasks()}
            assert {secret.task_id, ours.task_id} <= everything

            # globex's stream shows its own task, never acme's.
            await eventually(lambda: ours.task_id in seen, within=10.0)
            assert secret.task_id not in seen

            # Stats for globex count only its pending task.
            async for stats in globex.watch_stats(interval=0.2):
                if stats.tasks_by_state.get("PENDING", 0) >= 1:
                    assert stats.tenant == "globex"
                    assert stats.tasks_by_state["PENDING"] == 1
                    break
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def test_an_agent_reaches_only_the_children_it_spawned(
    secured: Stack, redis: Redis, keys: Keys
) -> None:
    store = TokenStore(redis, keys)
    planner_token, _ = await store.create("planner", "agent")
    other_token, _ = await store.create("other-worker", "agent")
    client_token, _ = await store.create("acme-ci", "client", "acme")
    children: list[str] = []

    async def plan(ctx: TaskContext) -> object:
        return {"child": await ctx.spawn("double", {"n": 2})}

    def double(ctx: TaskContext) -> int:
        children.append(ctx.task_id)
        return int(ctx.json()["n"]) * 2

    agent = Agent(
        "planner",
        transport="grpc",
        gateway_addr=secured.gateway_addr,
        tls=PLAINTEXT,
        token=planner_token,
    )
    agent.handler("plan")(plan)
    agent.handler("double")(double)
    secured.agents.append(agent)
    await agent.start()
    addr = secured.gateway_addr
    async with (
        Client(addr, tls=PLAINTEXT, token=client_token) as acme,
        Client(addr, tls=PLAINTEXT, token=planner_token) as planner,
        Client(addr, tls=PLAINTEXT, token=other_token) as other,
    ):
        done = await acme.submit_and_wait("plan", {}, timeout=30)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done
        assert done.result == b'{"child":4}'
        [child] = children
        assert (await acme.get(child)).tenant == "acme"
        # The spawner's token reads its child; another agent's token reaches neither the child
        # nor the client's task, and cancels nothing.
        assert (await planner.get(child)).parent_task_id == done.task_id
        assert await code_of(planner.get(done.task_id)) == CODE.NOT_FOUND
        pending = await acme.submit("nobody-runs-this", {"secret": 1})
        for task_id in (child, done.task_id, pending.task_id):
            assert await code_of(other.get(task_id)) == CODE.NOT_FOUND
        assert await code_of(other.cancel(pending.task_id)) == CODE.NOT_FOUND
        assert await code_of(planner.cancel(pending.task_id)) == CODE.NOT_FOUND
        assert (await acme.get(pending.task_id)).state == task_pb2.TASK_STATE_PENDING


async def test_submits_the_gateway_sends_together_stay_with_their_callers_tenant(
    secured: Stack, redis: Redis, keys: Keys
) -> None:
    """Raw SubmitTask calls (as a Node or grpcurl client makes them) that arrive while one is in
    flight go to the coordinator in batches, each batch of one caller only
    (services/gateway/submits.py)."""
    store = TokenStore(redis, keys)
    tokens = {t: (await store.create(f"{t}-ci", "client", t))[0] for t in ("acme", "globex")}
    assert secured.gateway is not None
    async with grpc.aio.insecure_channel(secured.gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)

        async def submit(tenant: str, n: int) -> task_pb2.Task:
            request = task_pb2.SubmitTaskRequest(capability="nobody-runs-this", payload=b"%d" % n)
            auth = [("authorization", f"Bearer {tokens[tenant]}")]
            return (await stub.SubmitTask(request, metadata=auth, timeout=10)).task

        # A lone globex call waiting behind acme's goes as a batch of one, sent by the drain
        # that acme's call started: still as globex.
        first = asyncio.ensure_future(submit("acme", 0))
        await asyncio.sleep(0)
        lone = await submit("globex", 0)
        assert ((await first).tenant, lone.tenant) == ("acme", "globex")
        first = asyncio.ensure_future(submit("acme", 0))
        await asyncio.sleep(0)
        callers = [("acme" if i % 2 else "globex", i) for i in range(1, 21)]
        tasks = await asyncio.gather(*(submit(t, i) for t, i in callers))
        assert (await first).tenant == "acme"
    assert [(t.tenant, t.payload) for t in tasks] == [(t, b"%d" % i) for t, i in callers]
    assert len({t.trace_id for t in tasks}) == len(tasks)  # each its own trace
    assert secured.gateway.submits.batches >= 2  # at least one batch per tenant
