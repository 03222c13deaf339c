"""Concurrency keys against a real Redis: the limit, the key's FIFO, the strategies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.v1 import event_pb2, stream_pb2, task_pb2, workflow_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.stack import Stack
from tests.integration.test_coordinator_flow import Parts
from tests.settings import StackSettings

KEY = "repo:api"


@pytest.fixture
async def parts(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, settings, channel)
    await channel.close()


async def states(parts: Parts, tasks: list[task_pb2.Task]) -> list[int]:
    return [(await parts.store.get(t.task_id)).state for t in tasks]


async def test_limit_holds_and_the_key_queue_is_fifo(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=8)
    tasks = await parts.submit("echo", 4, concurrency_key=KEY, concurrency_limit=2)
    [free] = await parts.submit("echo")  # no key: never held back by the others
    assert await parts.scheduler.schedule_once() == 3  # two holders and the free task
    delivered = await read_inbox(parts.redis, parts.keys, agent)
    assert [e.task_id for e in delivered] == [tasks[0].task_id, tasks[1].task_id, free.task_id]
    waiting = await parts.store.get(tasks[2].task_id)
    assert waiting.state == task_pb2.TASK_STATE_PENDING
    assert waiting.waiting_reason == f"waiting on concurrency key {KEY} (limit 2)"
    assert waiting.concurrency_key == KEY and waiting.concurrency_limit == 2
    # Parked: nothing left in the pending queue, so passes find nothing to do.
    assert await parts.redis.zcard(parts.keys.pending("echo")) == 0
    assert await parts.scheduler.schedule_once() == 0
    # A holder ends: the first waiter (and only it) comes back and runs.
    await send_result(parts.redis, parts.keys, delivered[0])
    await parts.drain_results()
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    assert env.task_id == tasks[2].task_id
    assert (await parts.store.get(tasks[2].task_id)).waiting_reason == ""
    types = [e.type for e in await parts.events() if e.concurrency_key == KEY]
    assert types.count(event_pb2.EVENT_TYPE_TASK_CONCURRENCY_WAITING) == 2


async def test_a_failed_attempt_frees_the_key_and_its_retry_queues_again(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    first, second = await parts.submit(
        "echo", 2, concurrency_key=KEY, max_attempts=3, retry_initial_backoff={"seconds": 60}
    )
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(
        parts.redis, parts.keys, env, outcome=stream_pb2.TASK_OUTCOME_FAILED, error="boom"
    )
    await parts.drain_results()
    # The second task takes the freed place; the first waits for its retry's backoff, then
    # for the key again.
    assert await parts.scheduler.schedule_once() == 1
    [env2] = await read_inbox(parts.redis, parts.keys, agent)
    assert env2.task_id == second.task_id
    assert await parts.redis.smembers(parts.keys.conc_holders(KEY)) == {second.task_id.encode()}
    retrying = await parts.store.get(first.task_id)
    assert (retrying.state, retrying.attempt) == (task_pb2.TASK_STATE_PENDING, 1)


async def test_cancel_newest_cancels_the_task_that_finds_the_key_full(parts: Parts) -> None:
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    kw = {"concurrency_key": KEY, "concurrency_strategy": 3}
    first, second = await parts.submit("echo", 2, **kw)
    assert await parts.scheduler.schedule_once() == 1
    assert await states(parts, [first, second]) == [
        task_pb2.TASK_STATE_ASSIGNED,
        task_pb2.TASK_STATE_CANCELLED,
    ]
    types = [e.type for e in await parts.events() if e.task_id == second.task_id]
    assert event_pb2.EVENT_TYPE_TASK_CONCURRENCY_CANCELLED in types


async def test_cancel_in_progress_the_newest_wins(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    kw = {"concurrency_key": KEY, "concurrency_strategy": 2}
    [old] = await parts.submit("echo", **kw)
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    [new] = await parts.submit("echo", **kw)
    old_now = await parts.store.get(old.task_id)
    assert old_now.state == task_pb2.TASK_STATE_CANCELLED
    assert old_now.error == f"superseded by task {new.task_id} on concurrency key {KEY}"
    # The cancelled holder keeps its place until its agent reports back ...
    assert await parts.scheduler.schedule_once() == 0
    assert (await parts.store.get(new.task_id)).waiting_reason.startswith("waiting on")
    await send_result(
        parts.redis, parts.keys, env, outcome=stream_pb2.TASK_OUTCOME_CANCELLED, error="x"
    )
    await parts.drain_results()
    # ... then the newest runs.
    assert await parts.scheduler.schedule_once() == 1
    assert (await parts.store.get(new.task_id)).state == task_pb2.TASK_STATE_ASSIGNED


async def test_cancelling_a_waiting_task_leaves_the_key_queue(parts: Parts) -> None:
    await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=4)
    _, waiter = await parts.submit("echo", 2, concurrency_key=KEY)
    assert await parts.scheduler.schedule_once() == 1
    assert await parts.redis.zcard(parts.keys.conc_wait(KEY)) == 1
    await parts.store.cancel(waiter.task_id)
    assert await parts.redis.zcard(parts.keys.conc_wait(KEY)) == 0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"concurrency_key": "Bad Key"}, "concurrency_key"),
        ({"concurrency_key": KEY, "concurrency_limit": 1001}, "concurrency_limit"),
        ({"concurrency_limit": 2}, "concurrency_key"),
        ({"concurrency_key": KEY, "concurrency_strategy": 9}, "concurrency_strategy"),
    ],
)
def test_bad_concurrency_fields_are_refused(
    kw: dict[str, object], field: str, settings: StackSettings
) -> None:
    req = task_pb2.SubmitTaskRequest(capability="echo", **kw)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as err:
        validate_task(req, settings)
    assert err.value.violations[0].field == field


async def test_workflow_steps_share_a_key_with_a_limit(stack: Stack) -> None:
    running, most = 0, 0

    async def tracked(ctx: TaskContext) -> object:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.05)  # the work: long enough for the steps to overlap if allowed
        finally:
            running -= 1
        return {}

    await stack.agent("worker", {"deploy": tracked}, max_concurrency=4)
    steps = [
        {"id": f"s{i}", "capability": "deploy", "concurrency_key": KEY, "concurrency_limit": 1}
        for i in range(4)
    ]
    wf = await stack.client.submit_workflow({"name": "keyed", "steps": steps})
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=60)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert most == 1
    task = await stack.client.get(done.steps[0].task_ids[0])
    assert (task.concurrency_key, task.concurrency_limit) == (KEY, 1)
