"""Eager dispatch: a submitted task an agent has room for is assigned by the submit script, and
every case where a scheduling pass must decide instead leaves the task PENDING as before."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.core.clock import now_ms
from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.eager import EagerDispatch
from hivewire_services.coordinator.tasks.queues import Queues
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.stack import Stack
from tests.settings import StackSettings
from tests.waiting import eventually

PENDING, ASSIGNED = task_pb2.TASK_STATE_PENDING, task_pb2.TASK_STATE_ASSIGNED
SUBMITTED = event_pb2.EVENT_TYPE_TASK_SUBMITTED
ASSIGNED_EVENT = event_pb2.EVENT_TYPE_TASK_ASSIGNED


class Parts:
    """The coordinator's task modules wired as server.py wires them, minus gRPC: the scheduler
    is never run, so only the submit itself can assign."""

    def __init__(
        self, redis: Redis, keys: Keys, settings: StackSettings, channel: grpc.aio.Channel
    ) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self.cache = AgentCache(channel, on_change=lambda: None)
        self.wakes = 0  # how often a submit woke the scheduler
        self.deadlines: list[int] = []
        self.store = TaskStore(
            redis, keys, settings, on_deadline=self.deadlines.append, on_submitted=self._woken
        )
        self.scheduler = Scheduler(
            redis, keys, settings, self.cache, on_deadline=self.deadlines.append
        )
        self.store.eager = EagerDispatch(self.scheduler)
        self.results = ResultsConsumer(redis, keys, settings, "test", on_applied=lambda: None)

    def _woken(self) -> None:
        self.wakes += 1

    async def submit(self, capability: str, n: int = 1, **kw: object) -> list[task_pb2.Task]:
        reqs = [task_pb2.SubmitTaskRequest(capability=capability, **kw) for _ in range(n)]  # type: ignore[arg-type]
        return await self.store.submit([validate_task(r, self.settings) for r in reqs])

    async def submit_batch(self, reqs: list[task_pb2.SubmitTaskRequest]) -> list[task_pb2.Task]:
        return await self.store.submit([validate_task(r, self.settings) for r in reqs])

    async def states(self, tasks: list[task_pb2.Task]) -> list[int]:
        return [t.state for t in await self.store.get_many([t.task_id for t in tasks]) if t]

    async def load(self, agent_id: str) -> int:
        return int(await self.redis.hget(self.keys.agent_load, agent_id) or 0)

    async def event_types(self, task_id: str) -> list[int]:
        events = [decode_entry(i, f) for i, f in await self.redis.xrange(self.keys.events)]
        return [e.type for e in events if e.task_id == task_id]

    async def drain_results(self) -> None:
        await self.results.ensure_group()
        while reply := await self.redis.xreadgroup(
            "coordinators", "test", {self.keys.results: ">"}, count=100
        ):
            for _, entries in reply:
                await self.results.handle(entries)


@pytest.fixture
async def parts(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, settings, channel)
    await channel.close()


async def test_a_task_submitted_to_an_idle_agent_is_assigned_by_the_submit(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=2)
    [task] = await parts.submit("echo", payload=b'"hi"', attempt_timeout={"seconds": 5})
    assert (task.state, task.attempt, task.agent_id) == (ASSIGNED, 1, agent)
    assert task.HasField("assign_time")
    stored = await parts.store.get(task.task_id)
    assert (stored.state, stored.attempt, stored.agent_id) == (ASSIGNED, 1, agent)
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    assert (env.task_id, env.attempt, env.payload, env.agent_id) == (
        task.task_id,
        1,
        b'"hi"',
        agent,
    )
    assert env.attempt_timeout.seconds == 5
    token = await parts.redis.hget(parts.keys.task(task.task_id), "token")
    assert token.decode() == env.attempt_token and len(env.attempt_token) == 32
    assert await parts.load(agent) == 1
    assert await parts.redis.zscore(parts.keys.task_leases, task.task_id) is not None
    assert await parts.redis.zscore(parts.keys.attempt_deadlines, task.task_id) is not None
    assert await parts.redis.zcard(parts.keys.pending("echo")) == 0
    assert await parts.event_types(task.task_id) == [SUBMITTED, ASSIGNED_EVENT]
    # No scheduling pass was needed, nor woken; the reclaimer heard of the attempt's deadline.
    assert parts.wakes == 0
    assert parts.scheduler.assigned_total == 1
    assert parts.deadlines and min(parts.deadlines) <= task.create_time.ToMilliseconds() + 6000
    assert await parts.scheduler.schedule_once() == 0
    # The result is applied as for any assignment.
    await send_result(parts.redis, parts.keys, env, result=b"ok")
    await parts.drain_results()
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_SUCCEEDED
    assert await parts.load(agent) == 0


async def test_a_task_assigned_by_its_submit_never_enters_the_queue(parts: Parts) -> None:
    """Assigned as it is created: no pending entry, fair turn or PENDING index entry is written
    to be taken away again in the same call, and the new hash is not read back (what makes an
    eager unary submit 11 Redis commands cheaper); a task the agent has no room for is queued as
    before, with its fair turn."""
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)

    async def calls(command: str) -> int:
        stats = await parts.redis.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    zrem, zrange, hmget = await calls("zrem"), await calls("zrange"), await calls("hmget")
    [task] = await parts.submit("echo")
    assert task.state == ASSIGNED
    assert (await calls("zrem"), await calls("zrange")) == (zrem, zrange)
    # One HMGET, the agent's: the task just written is not read back.
    assert await calls("hmget") == hmget + 1
    assert not await parts.redis.exists(parts.keys.fair("echo"))
    assert await parts.redis.zscore(parts.keys.tasks_by_state(str(ASSIGNED)), task.task_id)
    assert await parts.redis.zscore(parts.keys.tasks_by_state(str(PENDING)), task.task_id) is None
    [second] = await parts.submit("echo")  # the one slot is taken
    assert second.state == PENDING
    assert await parts.redis.zscore(parts.keys.pending("echo"), second.task_id) is not None
    assert await parts.redis.zscore(parts.keys.tasks_by_state(str(PENDING)), second.task_id)
    assert await parts.redis.hget(parts.keys.task(second.task_id), "fair_tag") is not None


async def test_no_agent_no_offer(parts: Parts) -> None:
    [task] = await parts.submit("echo")
    assert task.state == PENDING
    assert parts.wakes == 1
    assert await parts.redis.zcard(parts.keys.pending("echo")) == 1


async def test_tasks_waiting_in_the_queue_go_first(parts: Parts) -> None:
    [early] = await parts.submit("echo")  # no agent yet: it waits
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    # Not even a task the queue would put ahead of the waiting one: a pass decides.
    [late] = await parts.submit("echo", priority=9)
    assert late.state == PENDING
    assert await parts.states([early, late]) == [PENDING, PENDING]
    assert await read_inbox(parts.redis, parts.keys, agent) == []
    assert parts.wakes == 2
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    assert env.task_id == late.task_id


async def test_a_retry_come_due_goes_first(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=2)
    [failing] = await parts.submit(
        "echo", max_attempts=2, retry_initial_backoff={"nanos": 50_000_000}
    )
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, stream_pb2.TASK_OUTCOME_FAILED, error="x")
    await parts.drain_results()
    due = await parts.redis.zscore(parts.keys.due, failing.task_id)
    assert due is not None  # its backoff runs; once past, it waits ahead of any new task
    await eventually(lambda: now_ms() > due, message="the retry coming due")
    [fresh] = await parts.submit("echo")
    assert fresh.state == PENDING
    assert await parts.scheduler.schedule_once(promote=True) == 2
    assert [e.task_id for e in await read_inbox(parts.redis, parts.keys, agent)] == [
        failing.task_id,
        fresh.task_id,
    ]


async def test_a_full_agent_gets_no_task_even_when_the_estimate_is_stale(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    # Another coordinator took the agent's one slot: this one's estimate does not know.
    await parts.redis.hset(parts.keys.agent_load, agent, 1)
    [task] = await parts.submit("echo")
    assert task.state == PENDING
    assert await parts.states([task]) == [PENDING]
    assert await read_inbox(parts.redis, parts.keys, agent) == []
    assert await parts.load(agent) == 1
    assert parts.wakes == 1
    assert await parts.event_types(task.task_id) == [SUBMITTED]
    # The refusal taught the estimate the agent's load in Redis.
    assert parts.scheduler.load[agent] == 1


async def test_the_second_task_for_a_one_slot_agent_waits(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    [first] = await parts.submit("echo")
    [second] = await parts.submit("echo")
    assert (first.state, second.state) == (ASSIGNED, PENDING)
    assert len(await read_inbox(parts.redis, parts.keys, agent)) == 1
    assert await parts.load(agent) == 1


async def test_a_paused_queue_is_not_dispatched(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    queues = Queues(parts.redis, parts.keys, parts.settings, lambda: ["echo"], lambda: None)
    await queues.pause("echo")
    [task] = await parts.submit("echo")
    assert task.state == PENDING
    assert await read_inbox(parts.redis, parts.keys, agent) == []
    await queues.resume("echo")
    [after] = await parts.submit("echo")
    assert after.state == PENDING  # the first still waits ahead of it
    assert await parts.scheduler.schedule_once() == 2


async def test_a_delayed_task_is_not_dispatched(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo", start_after={"seconds": 60})
    assert task.state == task_pb2.TASK_STATE_SCHEDULED
    assert await parts.states([task]) == [task_pb2.TASK_STATE_SCHEDULED]
    assert await read_inbox(parts.redis, parts.keys, agent) == []
    assert parts.wakes == 1  # the scheduler sets its alarm for the due time


async def test_a_delayed_task_in_a_batch_does_not_hold_back_those_behind_it(parts: Parts) -> None:
    """It waits in the due set, not at the head of the queue: the next task is assigned."""
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=2)
    delayed = task_pb2.SubmitTaskRequest(capability="echo")
    delayed.start_after.seconds = 60
    later, now = await parts.submit_batch([delayed, task_pb2.SubmitTaskRequest(capability="echo")])
    assert (later.state, now.state) == (task_pb2.TASK_STATE_SCHEDULED, ASSIGNED)


async def test_a_full_concurrency_key_leaves_the_task_for_the_scheduler(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    kw: dict[str, object] = {"concurrency_key": "k", "concurrency_limit": 1}
    [holder] = await parts.submit("echo", **kw)
    [waiter] = await parts.submit("echo", **kw)
    assert (holder.state, waiter.state) == (ASSIGNED, PENDING)
    assert await parts.redis.smembers(parts.keys.conc_holders("k")) == {holder.task_id.encode()}
    # Not parked by the submit: still queued, no waiting event until a pass parks it.
    assert await parts.redis.zcard(parts.keys.pending("echo")) == 1
    assert await parts.event_types(waiter.task_id) == [SUBMITTED]
    assert await parts.scheduler.schedule_once() == 0
    assert await parts.event_types(waiter.task_id) == [
        SUBMITTED,
        event_pb2.EVENT_TYPE_TASK_CONCURRENCY_WAITING,
    ]
    assert len(await read_inbox(parts.redis, parts.keys, agent)) == 1


async def test_an_exhausted_rate_limit_leaves_the_task_for_the_scheduler(parts: Parts) -> None:
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    await parts.store.rate_limits.set("api", 1, 60_000)
    [first] = await parts.submit("echo", rate_limit_units={"api": 1})
    [second] = await parts.submit("echo", rate_limit_units={"api": 1})
    assert (first.state, second.state) == (ASSIGNED, PENDING)
    assert await parts.redis.zscore(parts.keys.due, second.task_id) is None
    assert await parts.event_types(second.task_id) == [SUBMITTED]


async def test_a_repeated_request_id_is_assigned_once(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    [first] = await parts.submit("echo", request_id="once")
    [again] = await parts.submit("echo", request_id="once")
    [twice] = await parts.submit_batch(
        [task_pb2.SubmitTaskRequest(capability="echo", request_id="once")]
    )
    assert first.state == ASSIGNED
    assert again.task_id == twice.task_id == first.task_id
    assert len(await read_inbox(parts.redis, parts.keys, agent)) == 1
    assert await parts.load(agent) == 1
    assert await parts.event_types(first.task_id) == [SUBMITTED, ASSIGNED_EVENT]
    assert parts.scheduler.assigned_total == 1


async def test_a_batch_is_dispatched_in_queue_order(parts: Parts) -> None:
    """Two free slots, three tasks: the pass would take the two high-priority ones, so the
    submit takes no other; the offers it cannot apply in order stay PENDING."""
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=2)
    low, high, high2 = await parts.submit_batch(
        [task_pb2.SubmitTaskRequest(capability="echo", priority=p) for p in (0, 9, 9)]
    )
    # The offers went to the first two rows (low, high); in queue order high comes first, then
    # high2, which has no offer: the submit stops there.
    assert [t.state for t in (low, high, high2)] == [PENDING, ASSIGNED, PENDING]
    assert parts.wakes == 1
    assert await parts.scheduler.schedule_once() == 1
    assert [e.task_id for e in await read_inbox(parts.redis, parts.keys, agent)] == [
        high.task_id,
        high2.task_id,
    ]


async def test_a_batch_fills_the_free_slots(parts: Parts) -> None:
    a = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=2)
    b = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    tasks = await parts.submit("echo", n=4)
    assert [t.state for t in tasks] == [ASSIGNED] * 3 + [PENDING]
    assert (await parts.load(a), await parts.load(b)) == (2, 1)
    assert parts.wakes == 1


async def test_workflow_steps_are_left_to_the_scheduler(parts: Parts) -> None:
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    spec = validate_task(task_pb2.SubmitTaskRequest(capability="echo"), parts.settings)
    stepped = dataclasses.replace(spec, workflow_id="w1", step_id="s1")
    [task] = await parts.store.submit([stepped])
    assert task.state == PENDING


async def test_the_rpcs_answer_assigned_and_events_keep_their_order(stack: Stack) -> None:
    """Through the gateway and a real coordinator: the replies already say ASSIGNED."""
    release = asyncio.Event()

    async def hold(ctx: TaskContext) -> bytes:
        await release.wait()
        return ctx.payload

    agent = await stack.agent("eager", {"echo": hold}, max_concurrency=4)
    task = await stack.client.submit("echo", "one")
    assert (task.state, task.attempt, task.agent_id) == (ASSIGNED, 1, agent.agent_id)
    batch = await stack.client.submit_many([{"capability": "echo", "payload": i} for i in range(2)])
    assert [t.state for t in batch] == [ASSIGNED, ASSIGNED]
    release.set()
    ids = [task.task_id, *(t.task_id for t in batch)]
    await eventually(
        lambda: _all_succeeded(stack, ids), message="the eagerly assigned tasks finishing"
    )
    assert stack.coordinator is not None
    redis, keys = stack.coordinator.redis, stack.coordinator.keys
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    assert [e.type for e in events if e.task_id == task.task_id] == [
        SUBMITTED,
        ASSIGNED_EVENT,
        event_pb2.EVENT_TYPE_TASK_SUCCEEDED,
    ]


async def _all_succeeded(stack: Stack, task_ids: list[str]) -> bool:
    return set(await stack.states(task_ids)) == {task_pb2.TASK_STATE_SUCCEEDED}
