"""Fair pending queues against a real Redis: the real scheduler and assign script hand tasks of
equal priority out round robin across fairness keys, weighted; priority still comes first."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.v1 import stream_pb2, task_pb2, workflow_pb2
from hivewire_services.common.errors import InvalidArgument, field_violations
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import Principal, acting_as
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.engine import WorkflowEngine
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.stack import Stack
from tests.integration.test_gateway_forwarding import rich_status
from tests.settings import StackSettings
from tests.waiting import eventually


class Fair:
    """A store, the real scheduler and results consumer, one agent with `slots` slots."""

    def __init__(self, redis: Redis, keys: Keys, settings: StackSettings, channel: object) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self.cache = AgentCache(channel, on_change=lambda: None)  # type: ignore[arg-type]
        self.store = TaskStore(redis, keys, settings)
        self.scheduler = Scheduler(redis, keys, settings, self.cache)
        self.results = ResultsConsumer(redis, keys, settings, "test", on_applied=lambda: None)
        self.agent = self.capability = ""

    async def start_agent(self, capability: str, slots: int) -> None:
        self.agent = await add_agent(self.redis, self.keys, self.cache, [capability], slots)
        self.capability = capability

    async def submit(self, n: int, key: str, **kw: object) -> list[str]:
        """n tasks of `key` (in batches, as a client would send them); their ids in order."""
        ids: list[str] = []
        for start in range(0, n, 500):
            reqs = [
                task_pb2.SubmitTaskRequest(capability=self.capability, fairness_key=key, **kw)  # type: ignore[arg-type]
                for _ in range(min(500, n - start))
            ]
            tasks = await self.store.submit([validate_task(r, self.settings) for r in reqs])
            ids += [t.task_id for t in tasks]
        return ids

    async def assign(self, n: int) -> list[stream_pb2.TaskEnvelope]:
        """Run scheduling passes until n tasks are delivered; the envelopes in delivery order."""
        delivered: list[stream_pb2.TaskEnvelope] = []
        for _ in range(n):
            if await self.scheduler.schedule_once() == 0:
                break
            delivered += await read_inbox(self.redis, self.keys, self.agent)
            if len(delivered) >= n:
                break
        return delivered

    async def finish(self, envelopes: list[stream_pb2.TaskEnvelope], **kw: object) -> None:
        await self.results.ensure_group()
        for env in envelopes:
            await send_result(self.redis, self.keys, env, **kw)  # type: ignore[arg-type]
        while reply := await self.redis.xreadgroup(
            "coordinators", "test", {self.keys.results: ">"}, count=100
        ):
            for _, entries in reply:
                await self.results.handle(entries)

    async def one_at_a_time(self, n: int) -> list[str]:
        """A one-slot agent's first n tasks, each finished before the next is assigned."""
        order: list[str] = []
        for _ in range(n):
            envs = await self.assign(1)
            order += [e.task_id for e in envs]
            await self.finish(envs)
        return order


@pytest.fixture
async def fair(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Fair]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Fair(redis, keys, settings, channel)
    await channel.close()


async def test_a_late_key_is_not_starved_by_a_burst(fair: Fair) -> None:
    """The issue's case: 2,000 tasks of A queued before 10 of B; B's all start at once."""
    await fair.start_agent("burst", 1)
    a = await fair.submit(2000, "a")
    b = await fair.submit(10, "b")
    assert await fair.redis.zcard(fair.keys.pending("burst")) == 2010  # depth: one ZCARD
    order = await fair.one_at_a_time(30)
    positions = [order.index(t) for t in b]
    assert max(positions) < 20, positions  # round robin: a, b, a, b ... (not after A's 2,000)
    assert [t for t in order if t in set(a)] == a[: len(order) - len(b)]  # A's stay in order
    assert await fair.redis.zcard(fair.keys.pending("burst")) == 1980


async def test_weights_give_turns_in_proportion(fair: Fair) -> None:
    await fair.start_agent("weighted", 40)
    light = set(await fair.submit(200, "light", fairness_weight=1))
    heavy = set(await fair.submit(200, "heavy", fairness_weight=3))
    window = [e.task_id for e in await fair.assign(40)]
    assert len(window) == 40
    counts = Counter("heavy" if t in heavy else "light" for t in window if t in heavy | light)
    assert 28 <= counts["heavy"] <= 32, counts  # 3:1
    assert 8 <= counts["light"] <= 12, counts


async def test_higher_priority_goes_first_across_keys(fair: Fair) -> None:
    await fair.start_agent("urgent", 1)
    low = await fair.submit(50, "a", priority=0)
    high_b = await fair.submit(3, "b", priority=7)
    high_c = await fair.submit(3, "c", priority=7)
    order = await fair.one_at_a_time(8)
    # b and c take turns within the band (which goes first in a round is up to the ids)
    assert [set(order[i : i + 2]) for i in (0, 2, 4)] == [{high_b[i], high_c[i]} for i in range(3)]
    assert order[6:] == low[:2]


async def test_one_key_keeps_priority_then_age(fair: Fair) -> None:
    """With one fairness key the queue is the queue it was: priority, then submission order."""
    await fair.start_agent("single", 1)
    ids = []
    for priority in (0, 5, 0, 5, 9, 0):
        ids += await fair.submit(1, "only", priority=priority)
    order = await fair.one_at_a_time(6)
    assert order == [ids[4], ids[1], ids[3], ids[0], ids[2], ids[5]]


async def test_cancel_leaves_the_rest_in_fair_order_and_state_goes_with_the_queue(
    fair: Fair,
) -> None:
    await fair.start_agent("cancel", 1)
    a = await fair.submit(5, "a")
    b = await fair.submit(3, "b")
    await fair.store.cancel(b[1])
    assert await fair.redis.zcard(fair.keys.pending("cancel")) == 7
    assert await fair.redis.exists(fair.keys.fair("cancel")) == 1
    order = await fair.one_at_a_time(7)
    assert b[1] not in order
    # Rounds by virtual time: b[2] keeps its round (the third), the cancel moves nothing up.
    assert set(order[:5]) == {a[0], a[1], a[2], b[0], b[2]}
    assert order[5:] == a[3:]
    # The queue is empty: its fairness state is gone, so virtual time starts over.
    assert await fair.redis.exists(fair.keys.fair("cancel")) == 0


async def test_a_retried_task_goes_back_to_its_place(fair: Fair) -> None:
    """A failed attempt is retried at its old place: ahead of what came after it."""
    await fair.start_agent("retry", 1)
    [first] = await fair.submit(1, "a", max_attempts=3)
    later_a = await fair.submit(4, "a")
    [env] = await fair.assign(1)
    assert env.task_id == first
    later_b = await fair.submit(4, "b")
    await fair.finish([env], outcome=stream_pb2.TASK_OUTCOME_FAILED, error="boom")
    await eventually(fair.scheduler.promote_due, within=10, message="the retry promoted")
    order = await fair.one_at_a_time(9)
    assert order[0] == first
    assert set(order[1:]) == set(later_a + later_b)
    assert (await fair.store.get(first)).state == task_pb2.TASK_STATE_SUCCEEDED


async def test_a_retry_after_the_queue_emptied_goes_to_the_head(fair: Fair) -> None:
    """The fair state starts over when the queue empties; an older task retried after that
    still goes ahead of the newer ones (its stored tag is moved to the new head)."""
    await fair.start_agent("restart", 1)
    [first] = await fair.submit(1, "a", max_attempts=3)
    [env] = await fair.assign(1)
    assert await fair.redis.exists(fair.keys.fair("restart")) == 0  # the queue emptied
    later = await fair.submit(3, "b")
    await fair.finish([env], outcome=stream_pb2.TASK_OUTCOME_FAILED, error="boom")
    await eventually(fair.scheduler.promote_due, within=10, message="the retry promoted")
    assert await fair.one_at_a_time(4) == [first, *later]


async def test_key_defaults_to_the_tenant_and_bad_values_are_refused(fair: Fair) -> None:
    req = task_pb2.SubmitTaskRequest(capability="echo")
    [task] = await fair.store.submit([validate_task(req, fair.settings)])
    assert (task.fairness_key, task.fairness_weight) == ("default", 1)
    with acting_as(Principal(name="c", role="client", tenant="acme")):
        spec = validate_task(req, fair.settings)
    [task] = await fair.store.submit([spec])
    stored = await fair.store.get(task.task_id)
    assert (stored.fairness_key, stored.fairness_weight) == ("acme", 1)
    keyed = task_pb2.SubmitTaskRequest(capability="echo", fairness_key="team.x", fairness_weight=7)
    stored = await fair.store.get(
        (await fair.store.submit([validate_task(keyed, fair.settings)]))[0].task_id
    )
    assert (stored.fairness_key, stored.fairness_weight) == ("team.x", 7)
    for bad, field in (
        ({"fairness_key": "Not Valid"}, "fairness_key"),
        ({"fairness_weight": 101}, "fairness_weight"),
        ({"fairness_weight": -1}, "fairness_weight"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            validate_task(
                task_pb2.SubmitTaskRequest(capability="echo", **bad),  # type: ignore[arg-type]
                fair.settings,
            )
        assert caught.value.violations[0].field == field


async def test_workflow_steps_queue_under_their_fairness_key(fair: Fair) -> None:
    """A step's key, else the workflow's, else the tenant's; the step's weight travels too."""
    engine = WorkflowEngine(fair.redis, fair.keys, fair.settings, fair.store, "test", lambda: None)
    req = workflow_pb2.SubmitWorkflowRequest(
        fairness_key="team-a",
        steps=[
            workflow_pb2.WorkflowStepSpec(step_id="a", capability="x"),
            workflow_pb2.WorkflowStepSpec(
                step_id="b", capability="x", fairness_key="team-b", fairness_weight=4
            ),
        ],
    )
    wf = await engine.submit(validate_workflow(req, fair.settings))
    a, b = [await fair.store.get(s.task_ids[0]) for s in wf.steps]
    assert (a.fairness_key, a.fairness_weight) == ("team-a", 1)
    assert (b.fairness_key, b.fairness_weight) == ("team-b", 4)
    req.ClearField("fairness_key")
    wf = await engine.submit(validate_workflow(req, fair.settings))
    a = await fair.store.get(wf.steps[0].task_ids[0])
    assert a.fairness_key == "default"
    req.fairness_key = "Bad Key"
    with pytest.raises(InvalidArgument) as caught:
        validate_workflow(req, fair.settings)
    assert caught.value.violations[0].field == "fairness_key"
    req.fairness_key = ""
    req.steps[1].fairness_weight = 500
    with pytest.raises(InvalidArgument) as caught:
        validate_workflow(req, fair.settings)
    assert caught.value.violations[0].field == "steps[1].fairness_weight"


async def test_through_the_gateway_a_real_agent_serves_the_late_key_first(stack: Stack) -> None:
    """End to end: a burst of the default tenant's tasks, then a few of another key, then one
    SDK agent with one slot: the late key's tasks start among the first, not after the burst."""
    burst = await stack.client.submit_many(
        [{"capability": "fairly", "payload": None} for _ in range(300)]
    )
    assert {t.fairness_key for t in burst} == {"default"}
    late = await stack.client.submit_many(
        [
            {"capability": "fairly", "payload": None, "fairness_key": "late", "fairness_weight": 2}
            for _ in range(5)
        ]
    )
    assert {(t.fairness_key, t.fairness_weight) for t in late} == {("late", 2)}
    started: list[str] = []

    def handle(ctx: TaskContext) -> None:
        started.append(ctx.task_id)

    await stack.agent("solo", {"fairly": handle}, max_concurrency=1)
    late_ids = {t.task_id for t in late}
    await eventually(lambda: late_ids <= set(started), within=30, message="the late tasks run")
    assert max(started.index(t) for t in late_ids) < 10, started[:10]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.client.submit("fairly", fairness_weight=101)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = field_violations(rich_status(caught.value))
    assert violation.field == "fairness_weight"


async def test_a_spawned_child_takes_its_parents_fairness_key(stack: Stack) -> None:
    children: list[str] = []

    async def parent(ctx: TaskContext) -> Any:
        return await ctx.spawn("child", {})

    def child(ctx: TaskContext) -> int:
        children.append(ctx.task_id)
        return 1

    await stack.agent(
        "p", {"parent": parent, "child": child}, gateway_addr=stack.settings.gateway_addr
    )
    done = await stack.client.submit_and_wait(
        "parent", {}, timeout=30, fairness_key="team-p", fairness_weight=5
    )
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done
    [child_id] = children
    got = await stack.client.get(child_id)
    assert (got.fairness_key, got.fairness_weight) == ("team-p", 5)
