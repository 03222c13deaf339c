"""Scheduler and results consumer against a real Redis: the life of a task, minus gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.core.wire import RESULT_FIELD
from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from tests.integration.coordinator_helpers import add_agent, read_inbox, result_of, send_result
from tests.settings import StackSettings
from tests.waiting import eventually


class Parts:
    def __init__(
        self, redis: Redis, keys: Keys, settings: StackSettings, channel: grpc.aio.Channel
    ) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self.cache = AgentCache(channel, on_change=lambda: None)
        self.store = TaskStore(redis, keys, settings)
        self.scheduler = Scheduler(redis, keys, settings, self.cache)
        self.wakes = 0  # how often the results consumer woke the scheduler
        self.results = ResultsConsumer(redis, keys, settings, "test", on_applied=self._woken)

    def _woken(self) -> None:
        self.wakes += 1

    async def submit(self, capability: str, n: int = 1, **kw: object) -> list[task_pb2.Task]:
        reqs = [task_pb2.SubmitTaskRequest(capability=capability, **kw) for _ in range(n)]  # type: ignore[arg-type]
        return await self.store.submit([validate_task(r, self.settings) for r in reqs])

    async def drain_results(self) -> None:
        await self.results.ensure_group()
        while True:
            reply = await self.redis.xreadgroup(
                "coordinators", "test", {self.keys.results: ">"}, count=100
            )
            if not reply:
                return
            for _, entries in reply:
                await self.results.handle(entries)

    async def events(self) -> list[event_pb2.Event]:
        return [decode_entry(i, f) for i, f in await self.redis.xrange(self.keys.events)]


@pytest.fixture
async def parts(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, settings, channel)
    await channel.close()


async def test_task_succeeds_end_to_end(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo", payload=b'"hi"')
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    assert (env.task_id, env.attempt, env.payload, env.agent_id) == (
        task.task_id,
        1,
        b'"hi"',
        agent,
    )
    assert len(env.attempt_token) == 32
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_ASSIGNED
    await send_result(parts.redis, parts.keys, env, result=b'"hi"')
    await parts.drain_results()
    done = await parts.store.get(task.task_id)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED
    assert done.result == b'"hi"'
    assert done.agent_id == agent
    assert int(await parts.redis.hget(parts.keys.agent_load, agent)) == 0
    assert await parts.redis.xlen(parts.keys.results) == 0  # applied entries are deleted
    types = [e.type for e in await parts.events()]
    assert types == [
        event_pb2.EVENT_TYPE_TASK_SUBMITTED,
        event_pb2.EVENT_TYPE_TASK_ASSIGNED,
        event_pb2.EVENT_TYPE_TASK_SUCCEEDED,
    ]


async def test_never_more_than_free_slots_and_least_loaded_first(parts: Parts) -> None:
    a = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=3)
    b = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    await parts.submit("echo", n=10)
    assert await parts.scheduler.schedule_once() == 4
    assert await parts.scheduler.schedule_once() == 0  # all slots taken
    got_a = await read_inbox(parts.redis, parts.keys, a)
    got_b = await read_inbox(parts.redis, parts.keys, b)
    assert (len(got_a), len(got_b)) == (3, 1)
    await send_result(parts.redis, parts.keys, got_b[0])
    await parts.drain_results()
    assert await parts.scheduler.schedule_once() == 1
    assert len(await read_inbox(parts.redis, parts.keys, b)) == 1


async def test_results_wake_the_scheduler_only_when_work_waits(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    await parts.submit("echo", n=2)
    assert await parts.scheduler.schedule_once() == 1
    [first] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, first)
    await parts.drain_results()
    assert parts.wakes == 1  # the second task waits for the freed slot
    assert await parts.scheduler.schedule_once() == 1
    [second] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, second)
    await parts.drain_results()
    assert parts.wakes == 1  # nothing waits: no scheduler pass for nothing
    [task] = await parts.submit("echo", max_attempts=2)
    assert await parts.scheduler.schedule_once() == 1
    [third] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, third, stream_pb2.TASK_OUTCOME_FAILED, error="x")
    await parts.drain_results()
    assert parts.wakes == 2  # a retry waits in the due set: the scheduler must learn its time
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_PENDING


async def test_priority_then_age(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=1)
    low = await parts.submit("echo", priority=0)
    high = await parts.submit("echo", priority=9)
    high2 = await parts.submit("echo", priority=9)
    order = []
    for _ in range(3):
        await parts.scheduler.schedule_once()
        [env] = await read_inbox(parts.redis, parts.keys, agent)
        order.append(env.task_id)
        await send_result(parts.redis, parts.keys, env)
        await parts.drain_results()
    assert order == [high[0].task_id, high2[0].task_id, low[0].task_id]


async def test_required_labels_route_and_do_not_block(parts: Parts) -> None:
    gpu = await add_agent(parts.redis, parts.keys, parts.cache, ["train"], labels={"gpu": "a100"})
    cpu = await add_agent(parts.redis, parts.keys, parts.cache, ["train"])
    [needs_tpu] = await parts.submit("train", required_labels={"tpu": "v5"})
    [needs_gpu] = await parts.submit("train", required_labels={"gpu": "a100"})
    [anyone] = await parts.submit("train")
    assert await parts.scheduler.schedule_once() == 2
    assert [e.task_id for e in await read_inbox(parts.redis, parts.keys, gpu)] == [
        needs_gpu.task_id
    ]
    assert [e.task_id for e in await read_inbox(parts.redis, parts.keys, cpu)] == [anyone.task_id]
    assert (await parts.store.get(needs_tpu.task_id)).state == task_pb2.TASK_STATE_PENDING


async def first_attempt_failed(
    parts: Parts, capability: str, error: str
) -> tuple[str, task_pb2.Task, stream_pb2.TaskEnvelope]:
    """An agent, and a task of two attempts whose first one it failed with `error`."""
    agent = await add_agent(parts.redis, parts.keys, parts.cache, [capability])
    [task] = await parts.submit(capability, max_attempts=2)
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, stream_pb2.TASK_OUTCOME_FAILED, error=error)
    await parts.drain_results()
    return agent, task, env


async def test_failures_retry_then_dead_letter(parts: Parts) -> None:
    agent, task, env = await first_attempt_failed(parts, "fail", "boom 1")
    retrying = await parts.store.get(task.task_id)
    assert retrying.state == task_pb2.TASK_STATE_PENDING
    assert retrying.error == "boom 1"
    assert await parts.scheduler.schedule_once() == 0  # not before its backoff
    # The backoff is at most retry_max_backoff (0.2 s in tests).
    await eventually(parts.scheduler.promote_due, within=10, message="the retry promoted")
    assert await parts.scheduler.schedule_once() == 1
    [env2] = await read_inbox(parts.redis, parts.keys, agent)
    assert env2.attempt == 2
    assert env2.attempt_token != env.attempt_token
    await send_result(parts.redis, parts.keys, env2, stream_pb2.TASK_OUTCOME_FAILED, error="boom 2")
    await parts.drain_results()
    failed = await parts.store.get(task.task_id)
    assert failed.state == task_pb2.TASK_STATE_FAILED
    assert failed.attempt == 2
    [(_, dead)] = await parts.redis.xrange(parts.keys.dead_letters)
    assert dead[b"task_id"].decode() == task.task_id
    assert dead[b"error"] == b"boom 2"


async def test_stale_duplicate_and_forged_results_are_ignored(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo")
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, result=b"forged", token="0" * 32)
    await send_result(parts.redis, parts.keys, env, result=b"real")
    await send_result(parts.redis, parts.keys, env, result=b"again")
    await parts.drain_results()
    done = await parts.store.get(task.task_id)
    assert done.result == b"real"
    ignored = [e for e in await parts.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert len(ignored) == 2
    assert "token" in ignored[0].message
    assert "duplicate" in ignored[1].message
    assert int(await parts.redis.hget(parts.keys.agent_load, agent)) == 0


async def test_a_succeeded_task_keeps_only_the_fields_that_say_something(parts: Parts) -> None:
    """A finished task is most of what Redis holds: its empty result and error, its attempt
    token and its queue bookkeeping go (every reader takes them as empty), and a report that
    comes after its success is still taken as late, not applied."""
    agent, task, _ = await first_attempt_failed(parts, "flaky", "boom")
    assert (await parts.store.get(task.task_id)).error == "boom"
    await eventually(parts.scheduler.promote_due, within=10, message="the retry promoted")
    assert await parts.scheduler.schedule_once() == 1
    [env2] = await read_inbox(parts.redis, parts.keys, agent)
    key = parts.keys.task(task.task_id)
    assert await parts.redis.hget(key, "token") == env2.attempt_token.encode()
    await send_result(parts.redis, parts.keys, env2)  # succeeded, empty result
    await parts.drain_results()
    fields = set(await parts.redis.hkeys(key))
    spent = {b"token", b"result", b"error", b"held", b"fair_tag", b"seq", b"priority"}
    assert not fields & (spent | {b"fairness_key", b"fairness_weight"}), fields
    done = await parts.store.get(task.task_id)
    assert (done.state, done.result, done.error, done.attempt, done.agent_id) == (
        task_pb2.TASK_STATE_SUCCEEDED,
        b"",
        "",  # the first attempt's error went with the success
        2,
        agent,
    )
    # Read back as they were: the tenant's key (none here: the default tenant's), weight 1.
    assert (done.priority, done.fairness_key, done.fairness_weight) == (0, "default", 1)
    listed = await parts.store.list(page_size=10, page_token="", state=0, capability="flaky")
    assert [t.task_id for t in listed.tasks] == [task.task_id]
    await send_result(parts.redis, parts.keys, env2, result=b"again")
    await send_result(parts.redis, parts.keys, env2, stream_pb2.TASK_OUTCOME_FAILED, error="x")
    await parts.drain_results()
    after = await parts.store.get(task.task_id)
    assert (after.state, after.result, after.error) == (task_pb2.TASK_STATE_SUCCEEDED, b"", "")
    ignored = [e for e in await parts.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert [e.message for e in ignored] == ["duplicate result (task already SUCCEEDED)"] * 2
    assert int(await parts.redis.hget(parts.keys.agent_load, agent)) == 0


async def test_a_result_with_times_that_are_no_valid_timestamps_is_applied(parts: Parts) -> None:
    """An agent's malformed start or end time (nanos out of range) is dropped, not its result."""
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo")
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    msg = result_of(env, result=b"ok")
    msg.start_time.seconds, msg.start_time.nanos = 1, 1_000_000_000
    msg.end_time.seconds, msg.end_time.nanos = 5, -1
    await parts.redis.xadd(parts.keys.results, {RESULT_FIELD: msg.SerializeToString()})
    await parts.drain_results()
    done = await parts.store.get(task.task_id)
    assert (done.state, done.result) == (task_pb2.TASK_STATE_SUCCEEDED, b"ok")
    assert not done.HasField("start_time")
    assert await parts.redis.xlen(parts.keys.results) == 0


async def test_a_succeeded_task_keeps_the_queue_fields_it_set(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo", priority=5, fairness_key="k", fairness_weight=3)
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, result=b"ok")
    await parts.drain_results()
    done = await parts.store.get(task.task_id)
    assert (done.state, done.priority, done.fairness_key, done.fairness_weight) == (
        task_pb2.TASK_STATE_SUCCEEDED,
        5,
        "k",
        3,
    )


async def test_a_new_task_stores_only_the_fields_that_say_something(parts: Parts) -> None:
    """Options at their defaults are not written at creation (a smaller hash is cheaper for
    every script that touches it) and read back as their defaults; options that are set are
    kept, and a batch takes its sequence numbers with one INCRBY."""

    async def calls(command: str) -> int:
        stats = await parts.redis.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))

    incr, incrby = await calls("incr"), await calls("incrby")
    plain = await parts.submit("echo", n=3)
    assert (await calls("incr"), await calls("incrby")) == (incr, incrby + 1)
    seqs = [int(await parts.redis.hget(parts.keys.task(t.task_id), "seq")) for t in plain]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    fields = set(await parts.redis.hkeys(parts.keys.task(plain[0].task_id)))
    defaults = {b"timeout_ms", b"s2s_ms", b"hb_ms", b"backoff_ms", b"backoff_max_ms"}
    defaults |= {b"progress_ms", b"due_ms", b"climit", b"cstrategy", b"workflow_id"}
    defaults |= {b"step_id", b"tenant", b"ckey", b"rate", b"request_id", b"labels"}
    assert not fields & defaults, fields & defaults
    assert {b"capability", b"priority", b"max_attempts", b"trace_id", b"state"} <= fields
    got = await parts.store.get(plain[0].task_id)
    assert (got.priority, got.max_attempts, dict(got.required_labels), got.request_id) == (
        0,
        parts.settings.default_max_attempts,
        {},
        "",
    )
    assert not got.HasField("attempt_timeout")
    [told] = await parts.submit(
        "echo",
        required_labels={"gpu": "a100"},
        request_id="r-1",
        attempt_timeout={"seconds": 7},
        concurrency_key="k",
    )
    kept = await parts.redis.hmget(
        parts.keys.task(told.task_id), ["labels", "request_id", "timeout_ms", "ckey", "climit"]
    )
    assert kept == [b'{"gpu": "a100"}', b"r-1", b"7000", b"k", b"1"]
    again = await parts.store.get(told.task_id)
    assert (dict(again.required_labels), again.request_id, again.concurrency_key) == (
        {"gpu": "a100"},
        "r-1",
        "k",
    )
    assert again.attempt_timeout.seconds == 7


async def test_results_from_another_agent_with_the_right_token_are_ignored(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    thief = await add_agent(parts.redis, parts.keys, parts.cache, ["other"])
    [task] = await parts.submit("echo")
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    forged = stream_pb2.TaskEnvelope()
    forged.CopyFrom(env)
    forged.agent_id = thief  # the token leaked to (or was guessed by) another agent
    await send_result(parts.redis, parts.keys, forged, stream_pb2.TASK_OUTCOME_STARTED)
    await send_result(parts.redis, parts.keys, forged, result=b"forged")
    await parts.drain_results()
    held = await parts.store.get(task.task_id)
    assert held.state == task_pb2.TASK_STATE_ASSIGNED  # neither STARTED nor the result applied
    assert int(await parts.redis.hget(parts.keys.agent_load, agent)) == 1  # slot still held
    ignored = [e for e in await parts.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert [e.agent_id for e in ignored] == [thief, thief]
    assert all(f"other than the assignee {agent}" in e.message for e in ignored)
    assert (parts.results.counts["ignored"], parts.results.counts["foreign"]) == (2, 2)
    await send_result(parts.redis, parts.keys, env, result=b"real")
    await parts.drain_results()
    done = await parts.store.get(task.task_id)
    assert (done.state, done.result, done.agent_id) == (
        task_pb2.TASK_STATE_SUCCEEDED,
        b"real",
        agent,
    )
    assert parts.results.counts["applied"] == 1
    assert int(await parts.redis.hget(parts.keys.agent_load, agent)) == 0


async def test_non_retryable_failure_fails_at_once(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["fail"])
    [task] = await parts.submit("fail", max_attempts=5)
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(
        parts.redis, parts.keys, env, stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY, error="bad input"
    )
    await parts.drain_results()
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_FAILED


async def test_started_marks_running(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["sleep"])
    [task] = await parts.submit("sleep")
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, stream_pb2.TASK_OUTCOME_STARTED)
    await parts.drain_results()
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_RUNNING
    await send_result(parts.redis, parts.keys, env, result=b"{}")
    await parts.drain_results()
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_SUCCEEDED


async def test_cancel_running_keeps_slot_until_agent_reports(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["sleep"], max_concurrency=1)
    [task] = await parts.submit("sleep")
    await parts.scheduler.schedule_once()
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    assert (await parts.store.cancel(task.task_id)).state == task_pb2.TASK_STATE_CANCELLED
    await parts.submit("sleep")
    assert await parts.scheduler.schedule_once() == 0  # the slot is still held
    await send_result(parts.redis, parts.keys, env, result=b"late")
    await parts.drain_results()
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_CANCELLED
    assert await parts.scheduler.schedule_once() == 1
