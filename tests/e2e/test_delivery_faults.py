"""Delivery under faults: agents killed -9 or stopped by signal, long tasks, poison, two
coordinators. Registry, coordinator and agents run as real processes on a real redis-server."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hivewire.v1 import coordinator_pb2, event_pb2, task_pb2
from hivewire_services.common.redis import Redis
from tests.e2e.delivery_stack import Driver, Processes, types
from tests.settings import StackSettings
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

RUNNING = task_pb2.TASK_STATE_RUNNING
SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
FAILED = task_pb2.TASK_STATE_FAILED
CANCELLED = task_pb2.TASK_STATE_CANCELLED


def secs(n: float) -> bytes:
    return json.dumps({"secs": n}).encode()


async def test_agent_kill9_mid_task_completes_on_another_agent(
    procs: Processes, driver: Driver
) -> None:
    procs.start_agent("a")
    a = await driver.agent_id("a")
    # Long enough that agent a is still running it once b has registered, even on a slow
    # machine (2 s was not, once, with two suites running at once on 2 cores).
    task = await driver.submit("sleep", secs(6))
    await driver.wait_for(task.task_id, lambda t: t.state == RUNNING and t.agent_id == a)
    procs.start_agent("b")
    b = await driver.agent_id("b")
    procs.kill("a")
    done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
    assert (done.agent_id, done.attempt) == (b, 2), procs.logs()
    assert json.loads(done.result) == {"agent": "b", "attempt": 2}
    seen = types(await driver.events(task.task_id))
    assert seen.count("TASK_SUCCEEDED") == 1
    assert "TASK_RECLAIMED" in seen
    # The dead agent's inbox was reclaimed and forgotten.
    assert not await driver.redis.exists(driver.keys.inbox(a))
    assert await driver.redis.zcard(driver.keys.reclaim_agents) == 0


async def test_agent_stopped_past_its_lease_has_its_late_result_ignored(
    procs: Processes, driver: Driver
) -> None:
    procs.start_agent("a")
    a = await driver.agent_id("a")
    # Long enough that agent a is still running it after b has started, even on a slow machine.
    task = await driver.submit("sleep", secs(6))
    await driver.wait_for(task.task_id, lambda t: t.state == RUNNING and t.agent_id == a)
    procs.start_agent("b")
    await driver.agent_id("b")
    procs.signal("a", signal.SIGSTOP)
    assert (await driver.store.get(task.task_id)).state == RUNNING, "a finished before the stop"
    done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
    procs.signal("a", signal.SIGCONT)
    assert json.loads(done.result)["agent"] == "b"

    async def late_result_ignored() -> list[event_pb2.Event]:
        return [e for e in await driver.events(task.task_id) if types([e]) == ["RESULT_IGNORED"]]

    ignored = await eventually(late_result_ignored, within=20, message="RESULT_IGNORED")
    assert ignored[0].attempt == 1 and ignored[0].agent_id == a
    assert "superseded" in ignored[0].message
    after = await driver.store.get(task.task_id)
    assert (after.state, after.result, after.attempt) == (SUCCEEDED, done.result, 2)
    assert types(await driver.events(task.task_id)).count("TASK_SUCCEEDED") == 1


async def test_long_task_with_heartbeats_is_not_reclaimed(procs: Processes, driver: Driver) -> None:
    procs.start_agent("a")
    await driver.agent_id("a")
    # The attempt lease is 3 s (FAST); the task runs well past two leases.
    task = await driver.submit("sleep", secs(8))
    done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
    assert done.attempt == 1
    seen = types(await driver.events(task.task_id))
    assert "TASK_RECLAIMED" not in seen and "TASK_RETRYING" not in seen


async def test_cancel_reaches_the_running_handler(procs: Processes, driver: Driver) -> None:
    procs.start_agent("a", concurrency=1)
    a = await driver.agent_id("a")
    task = await driver.submit("sleep", secs(60))
    await driver.wait_for(task.task_id, lambda t: t.state == RUNNING)
    cancelled = await driver.stub.CancelTask(
        coordinator_pb2.CoordinatorServiceCancelTaskRequest(
            request=task_pb2.CancelTaskRequest(task_id=task.task_id)
        ),
        timeout=5,
    )
    assert cancelled.response.task.state == task_pb2.TASK_STATE_CANCELLED
    # The next heartbeat tells the agent; it stops the handler and reports back, which
    # frees its only slot long before the 60 s task would have ended.

    async def slot_freed() -> bool:
        return await driver.redis.hget(driver.keys.agent_load, a) == b"0"

    await eventually(slot_freed, within=15, message=f"the agent's slot freed\n{procs.logs()}")
    seen = types(await driver.events(task.task_id))
    assert seen.count("TASK_CANCELLED") == 1 and "RESULT_IGNORED" not in seen
    follow = await driver.submit("sleep", secs(0))
    await driver.wait_for(follow.task_id, lambda t: t.state == SUCCEEDED)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await driver.stub.CancelTask(
            coordinator_pb2.CoordinatorServiceCancelTaskRequest(
                request=task_pb2.CancelTaskRequest(task_id=follow.task_id)
            ),
            timeout=5,
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_capability_without_agent_waits_then_drains(procs: Processes, driver: Driver) -> None:
    tasks = [await driver.submit("sleep", secs(0)) for _ in range(5)]

    async def queued() -> bool:
        return await driver.redis.zcard(driver.keys.pending("sleep")) == len(tasks)

    await eventually(queued, message="the tasks queued for an agent")
    for task in tasks:
        assert (await driver.store.get(task.task_id)).state == task_pb2.TASK_STATE_PENDING
    procs.start_agent("late")
    for task in tasks:
        done = await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
        assert done.attempt == 1


async def test_two_coordinators_apply_every_result_once(
    procs: Processes, driver: Driver, redis: Redis, settings: StackSettings
) -> None:
    second = Driver(redis, settings, await procs.start_coordinator("coordinator-2"))
    procs.start_agent("a", concurrency=8)
    procs.start_agent("b", concurrency=8)
    try:
        submitted = await asyncio.gather(
            *(
                (driver if i % 2 else second).submit("sleep", secs(0.01), request_id=f"r{i}")
                for i in range(120)
            )
        )
        # The same request_id through the other coordinator is the same task.
        again = await second.submit("sleep", secs(0.01), request_id="r1")
        assert again.task_id == submitted[1].task_id
        for task in submitted:
            await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED, within=60)
    finally:
        await second.close()
    events = await driver.events()
    succeeded = [e.task_id for e in events if types([e]) == ["TASK_SUCCEEDED"]]
    assert sorted(succeeded) == sorted(t.task_id for t in submitted)
    assert len(set(succeeded)) == 120


async def test_attempt_timeout_on_a_real_agent_fails_then_retries(
    procs: Processes, driver: Driver
) -> None:
    procs.start_agent("a")
    await driver.agent_id("a")
    timeout = Duration()
    timeout.FromMilliseconds(300)
    task = await driver.submit("sleep", secs(30), attempt_timeout=timeout, max_attempts=2)
    done = await driver.wait_for(task.task_id, lambda t: t.state == FAILED)
    assert done.attempt == 2
    assert "TimeoutError" in done.error
    assert types(await driver.events(task.task_id)).count("TASK_RETRYING") == 1


async def test_memory_stays_bounded_after_a_run(
    settings: StackSettings, tmp_path: Path, redis: Redis
) -> None:
    procs = Processes(settings, tmp_path, {"HIVEWIRE_EVENTS_MAXLEN": "100"})
    await procs.start_registry()
    await procs.start_coordinator()
    procs.start_agent("a", concurrency=16)
    driver = Driver(redis, settings, procs.coordinators[0])
    try:
        tasks = [await driver.submit("sleep", secs(0)) for _ in range(300)]
        for task in tasks:
            await driver.wait_for(task.task_id, lambda t: t.state == SUCCEEDED)
        k = driver.keys

        async def trimmed() -> bool:  # the trimmer runs every few seconds
            return await redis.xlen(k.events) <= 110

        await eventually(trimmed, within=20, message="the events stream trimmed")
        assert await redis.xlen(k.results) == 0
        a = await driver.agent_id("a")
        assert await redis.xlen(k.inbox(a)) == 0
        for key in (k.due, k.task_leases, k.attempt_deadlines, k.start_deadlines):
            assert await redis.zcard(key) == 0, key
        assert await redis.hget(k.agent_load, a) == b"0"
    finally:
        await driver.close()
        procs.close()


async def test_coordinator_kill9_under_load_then_restart(
    settings: StackSettings, tmp_path: Path, redis: Redis
) -> None:
    procs = Processes(settings, tmp_path, {"HIVEWIRE_RESULTS_CLAIM_IDLE": "2"})
    await procs.start_registry()
    await procs.start_coordinator()
    procs.start_agent("a", concurrency=8)
    procs.start_agent("b", concurrency=8)
    driver = Driver(redis, settings, procs.coordinators[0])
    try:
        inboxes = [driver.keys.inbox(await driver.agent_id(name)) for name in ("a", "b")]
        tasks = [await driver.submit("sleep", secs(0.02)) for _ in range(300)]
        done_index = driver.keys.tasks_by_state(str(SUCCEEDED))

        async def some_done() -> bool:
            return await redis.zcard(done_index) >= 60

        await eventually(some_done, message="60 tasks done")
        procs.kill("coordinator")

        # The agents finish what they hold (each inbox entry is deleted once its result is
        # written): results nobody applies until the restart.
        async def results_orphaned() -> bool:
            return all([await redis.xlen(inbox) == 0 for inbox in inboxes])

        await eventually(results_orphaned, message="the agents' inboxes drained")
        restarted = Driver(redis, settings, await procs.start_coordinator("coordinator-2"))
        try:
            for task in tasks:
                await restarted.wait_for(task.task_id, lambda t: t.state == SUCCEEDED, within=60)
        finally:
            await restarted.close()
        succeeded = [e.task_id for e in await driver.events() if types([e]) == ["TASK_SUCCEEDED"]]
        assert sorted(succeeded) == sorted(t.task_id for t in tasks)
    finally:
        await driver.close()
        procs.close()


async def test_a_parent_lost_with_its_agent_has_its_children_cancelled(
    procs: Processes, driver: Driver
) -> None:
    """The agent running a parent dies while its child runs: the parent fails coordinator-side
    (its one attempt lost), and the coordinator cancels the child, which nobody waits for."""
    procs.env["HIVEWIRE_GATEWAY_ADDR"] = await procs.start_gateway()
    procs.start_agent("a")
    a = await driver.agent_id("a")
    parent = await driver.submit("parent", secs(120), max_attempts=1)
    children = driver.keys.task_children(parent.task_id)

    async def spawned() -> str | None:
        ids = await driver.redis.smembers(children)
        return next(iter(ids)).decode() if ids else None

    child_id = await eventually(spawned, message=f"the child spawned\n{procs.logs()}")
    await driver.wait_for(child_id, lambda t: t.state == RUNNING and t.agent_id == a)
    procs.start_agent("b")  # takes the child over once a's lease runs out
    await driver.agent_id("b")
    procs.kill("a")
    done = await driver.wait_for(parent.task_id, lambda t: t.state == FAILED)
    assert done.attempt == 1, done
    child = await driver.wait_for(child_id, lambda t: t.state == CANCELLED)
    assert child.parent_task_id == parent.task_id
    assert "TASK_CANCELLED" in types(await driver.events(child_id)), procs.logs()

    async def handled() -> bool:  # the entry goes once the cancelling is done, just after
        return await driver.redis.xlen(driver.keys.ended_parents) == 0

    await eventually(handled, message="the ended-parents entry acknowledged and deleted")
