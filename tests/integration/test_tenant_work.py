"""Tenants: tasks, dead letters, task output and workflows belong to the tenant of the principal
that created them; clients see and change only their tenant's, admins every tenant's.

The principal is bound in-process with `principal.acting_as` around calls of the domain
modules, as the auth interceptor binds it around each RPC, so these stay valid behind it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.v1 import event_pb2, stream_pb2, task_pb2, workflow_pb2
from hivewire_services.common.errors import NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import Principal, acting_as
from hivewire_services.common.redis import Redis
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.workflows.engine import WorkflowEngine
from hivewire_services.gateway.output import OutputReader
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.stack import Stack
from tests.integration.test_delivery_deadlines import Delivery
from tests.settings import StackSettings

ALICE = Principal("alice", "client", "acme")
VIEWER = Principal("val", "viewer", "acme")
BOB = Principal("bob", "client", "globex")
DAN = Principal("dan", "client", "default")
ADMIN = Principal("root", "admin", "acme")
PENDING = task_pb2.TASK_STATE_PENDING
MISSING_TASK = "f" * 32


@pytest.fixture
async def d(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Delivery]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Delivery(redis, keys, settings, channel)
    await channel.close()


async def not_found(call: object) -> NotFound:
    """The NotFound an awaitable raises (it must raise one)."""
    with pytest.raises(NotFound) as info:
        await call  # type: ignore[misc]
    return info.value


async def list_all(d: Delivery, page_size: int, state: int = 0) -> list[task_pb2.Task]:
    """Every page of ListTasks as the bound principal."""
    out: list[task_pb2.Task] = []
    token = ""
    for _ in range(50):
        page = await d.store.list(page_size=page_size, page_token=token, state=state, capability="")
        out += page.tasks
        token = page.next_page_token
        if not token:
            return out
    raise AssertionError("paging did not end")


async def test_tasks_get_list_cancel_are_scoped_to_the_tenant(d: Delivery) -> None:
    with acting_as(ALICE):
        alice = await d.submit("echo", 5, request_id="")
        [alice_req] = await d.submit("echo", request_id="same")
    with acting_as(BOB):
        bob = await d.submit("echo", 2)
        [bob_req] = await d.submit("echo", request_id="same")
    # A request_id is the tenant's own: the same one in another tenant is another task.
    assert bob_req.task_id != alice_req.task_id
    assert {t.tenant for t in alice} == {"acme"} and bob[0].tenant == "globex"
    assert await d.redis.zcard(d.keys.tenant_tasks("acme")) == 6

    with acting_as(ALICE):
        assert (await d.store.get(alice[0].task_id)).tenant == "acme"
        # Another tenant's task answers exactly like a task that does not exist.
        foreign = await not_found(d.store.get(bob[0].task_id))
        missing = await not_found(d.store.get(MISSING_TASK))
        assert foreign.reason == missing.reason == "TASK_NOT_FOUND"
        assert str(foreign) == str(missing).replace(MISSING_TASK, bob[0].task_id)
        # Listing pages through the tenant's own tasks only, newest first.
        mine = await list_all(d, page_size=2)
        assert [t.task_id for t in mine] == [t.task_id for t in [alice_req, *alice[::-1]]]
        pending = await d.store.list(page_size=10, page_token="", state=PENDING, capability="")
        assert len(pending.tasks) == 6 and not pending.next_page_token
        # Cancelling another tenant's task: NOT_FOUND, and nothing changes.
        before = await d.redis.xlen(d.keys.events)
        await not_found(d.store.cancel(bob[0].task_id))
    assert await d.redis.xlen(d.keys.events) == before
    with acting_as(BOB):
        assert (await d.store.get(bob[0].task_id)).state == PENDING
        assert {t.task_id for t in await list_all(d, page_size=2)} == {
            *(t.task_id for t in bob),
            bob_req.task_id,
        }
    with acting_as(VIEWER):  # a viewer of the tenant reads what its clients created
        assert (await d.store.get(alice[1].task_id)).task_id == alice[1].task_id
    with acting_as(ADMIN):  # an admin sees every tenant's work, whatever its own tenant
        assert len(await list_all(d, page_size=3)) == 9
        assert (await d.store.get(bob[1].task_id)).tenant == "globex"
        cancelled = await d.store.cancel(bob[1].task_id)
    assert cancelled.state == task_pb2.TASK_STATE_CANCELLED
    with acting_as(ALICE):
        assert (await d.store.cancel(alice[0].task_id)).state == task_pb2.TASK_STATE_CANCELLED
    # Retention removes expired tasks from their tenant's index too.
    assert await d.store.expire(cutoff_ms=2**50) == 2
    assert await d.redis.zcard(d.keys.tenant_tasks("acme")) == 5
    assert await d.redis.zcard(d.keys.tenant_tasks("globex")) == 2


async def test_records_without_a_tenant_belong_to_the_default_tenant(d: Delivery) -> None:
    with acting_as(ALICE):
        [alice] = await d.submit("echo")
    [old] = await d.submit("echo")  # no principal bound: LOCAL, the default tenant's admin
    await d.redis.hdel(d.keys.task(old.task_id), "tenant")  # as written before tenants
    with acting_as(DAN):
        got = await d.store.get(old.task_id)
        assert got.tenant == "default"
        assert [t.task_id for t in await list_all(d, page_size=1)] == [old.task_id]
        await not_found(d.store.get(alice.task_id))
    with acting_as(ALICE):
        await not_found(d.store.get(old.task_id))
        assert [t.task_id for t in await list_all(d, page_size=1)] == [alice.task_id]


async def test_dead_letters_are_scoped_and_keep_their_tenant_when_retried(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["fail"], max_concurrency=10)
    with acting_as(ALICE):
        alice = await d.submit("fail", 3, max_attempts=1)
    with acting_as(BOB):
        bob = await d.submit("fail", 2, max_attempts=1)
    await d.scheduler.schedule_once()
    for env in await read_inbox(d.redis, d.keys, agent):
        await send_result(d.redis, d.keys, env, stream_pb2.TASK_OUTCOME_FAILED, error="x")
    await d.drain_results()

    async def letters() -> list[task_pb2.DeadLetter]:
        out, token = [], ""
        while True:
            page = await d.dead.list(page_size=2, page_token=token)
            out += page.dead_letters
            token = page.next_page_token
            if not token:
                return out

    with acting_as(ALICE):
        mine = await letters()
        assert sorted(x.task.task_id for x in mine) == sorted(t.task_id for t in alice)
    with acting_as(BOB):
        theirs = await letters()
        assert sorted(x.task.task_id for x in theirs) == sorted(t.task_id for t in bob)
        # Retrying another tenant's dead letter: NOT_FOUND like a missing one, nothing changes.
        foreign = await not_found(d.dead.retry(mine[0].dead_letter_id))
        assert foreign.reason == "DEAD_LETTER_NOT_FOUND"
    with acting_as(ADMIN):
        assert len(await letters()) == 5
    with acting_as(ALICE):
        retried = await d.dead.retry(mine[0].dead_letter_id)
        assert (retried.state, retried.tenant) == (PENDING, "acme")
        assert len(await letters()) == 2
        assert [t.task_id for t in await list_all(d, page_size=10, state=PENDING)] == [
            retried.task_id
        ]
    requeued = [e for e in await d.events() if e.type == event_pb2.EVENT_TYPE_TASK_REQUEUED]
    assert [(e.task_id, e.tenant) for e in requeued] == [(retried.task_id, "acme")]


async def test_task_output_of_another_tenant_is_not_found(d: Delivery) -> None:
    with acting_as(ALICE):
        [task] = await d.submit("echo")
    reader = OutputReader(d.redis, d.redis, d.keys, max_followers=1)
    with acting_as(BOB):
        with pytest.raises(NotFound) as info:
            async for _ in reader.read(task.task_id, "0-0", follow=False):
                pass
        assert info.value.reason == "TASK_NOT_FOUND"
    with acting_as(ALICE):
        frames = [frame async for frame in reader.read(task.task_id, "0-0", follow=False)]
    assert frames == []  # the owner may read it (it has no output yet)


def workflow_request(name: str) -> workflow_pb2.SubmitWorkflowRequest:
    req = workflow_pb2.SubmitWorkflowRequest(name=name)
    req.steps.add(step_id="a", capability="src", payload=json.dumps({"n": 1}).encode())
    req.steps.add(step_id="b", capability="each", depends_on=["a"])
    return req


async def test_workflows_and_their_tasks_are_scoped_to_the_tenant(
    d: Delivery, settings: StackSettings
) -> None:
    engine = WorkflowEngine(d.redis, d.keys, settings, d.store, "test", lambda: None)
    with acting_as(ALICE):
        alice = [
            await engine.submit(validate_workflow(workflow_request(f"w{i}"), settings))
            for i in range(3)
        ]
    with acting_as(BOB):
        bob = await engine.submit(validate_workflow(workflow_request("b"), settings))
    assert {w.tenant for w in alice} == {"acme"} and bob.tenant == "globex"
    # Step tasks inherit their workflow's tenant.
    [a_task] = alice[0].steps[0].task_ids
    with acting_as(ALICE):
        assert (await d.store.get(a_task)).tenant == "acme"
    with acting_as(BOB):
        await not_found(d.store.get(a_task))
        foreign = await not_found(engine.store.get(alice[0].workflow_id))
        missing = await not_found(engine.store.get(MISSING_TASK))
        assert foreign.reason == missing.reason == "WORKFLOW_NOT_FOUND"
        await not_found(engine.cancel(alice[0].workflow_id))
        page = await engine.store.list(page_size=10, page_token="", state=0)
        assert [w.workflow_id for w in page.workflows] == [bob.workflow_id]
    assert await d.redis.hget(d.keys.workflow(alice[0].workflow_id), "cancel") is None
    with acting_as(ALICE):
        seen, token = [], ""
        while True:
            page = await engine.store.list(page_size=2, page_token=token, state=0)
            seen += [w.workflow_id for w in page.workflows]
            token = page.next_page_token
            if not token:
                break
        assert seen == [w.workflow_id for w in alice[::-1]]
        cancelled = await engine.cancel(alice[0].workflow_id)
        assert cancelled.state == workflow_pb2.WORKFLOW_STATE_CANCELLED
    # Retention removes an ended workflow from its tenant's index too.
    assert await d.redis.zcard(d.keys.tenant_workflows("acme")) == 3
    assert await engine.store.expire(cutoff_ms=2**50) == 1
    assert await d.redis.zcard(d.keys.tenant_workflows("acme")) == 2
    with acting_as(ADMIN):
        page = await engine.store.list(page_size=10, page_token="", state=0)
        assert len(page.workflows) == 3  # one of 4 expired above
    submitted = [e for e in await d.events() if e.type == event_pb2.EVENT_TYPE_WORKFLOW_SUBMITTED]
    assert sorted(e.tenant for e in submitted) == ["acme", "acme", "acme", "globex"]


async def test_local_callers_work_in_the_default_tenant_through_the_gateway(
    stack: Stack, redis: Redis, keys: Keys
) -> None:
    """Authentication off: every call is the local admin of the default tenant, as before."""
    task = await stack.client.submit("nobody", {"n": 1})
    assert task.tenant == "default"
    got = await stack.client.get(task.task_id)
    assert got.tenant == "default"
    assert await redis.hget(keys.task(task.task_id), "tenant") is None  # no tenant stored
    assert await redis.zcard(keys.tenant_tasks("default")) == 0  # found via the global index
