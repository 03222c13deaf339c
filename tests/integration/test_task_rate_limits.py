"""Rate limits against a real Redis: definitions, the check at submit, parking by window."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.errors import InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.coordinator_helpers import add_agent, all_task_ids
from tests.integration.stack import Stack
from tests.integration.test_coordinator_flow import Parts
from tests.settings import StackSettings


@pytest.fixture
async def parts(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, settings, channel)
    await channel.close()


async def test_unknown_limit_or_too_many_units_is_refused_and_nothing_written(
    parts: Parts,
) -> None:
    await parts.store.rate_limits.set("openai", 1000, 60_000)
    with pytest.raises(InvalidArgument) as unknown:
        await parts.submit("echo", rate_limit_units={"nope": 1})
    assert unknown.value.reason == "RATE_LIMIT_NOT_FOUND"
    assert unknown.value.violations[0].field == "rate_limit_units[nope]"
    with pytest.raises(InvalidArgument) as big:
        await parts.submit("echo", rate_limit_units={"openai": 1001})
    assert "more than rate limit 'openai' allows" in big.value.message
    assert await all_task_ids(parts.redis, parts.keys) == []


async def test_a_task_over_the_window_waits_in_the_due_set_until_it_ends(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"], max_concurrency=8)
    await parts.store.rate_limits.set("openai", 1000, 3_600_000)
    _, second = await parts.submit("echo", 2, rate_limit_units={"openai": 600})
    assert await parts.scheduler.schedule_once() == 1
    waiting = await parts.store.get(second.task_id)
    assert waiting.state == task_pb2.TASK_STATE_PENDING
    assert waiting.waiting_reason.startswith("waiting on rate limit openai until ")
    due = await parts.redis.zscore(parts.keys.due, second.task_id)
    assert due is not None and due % 3_600_000 == 0  # the end of the current window
    assert await parts.redis.zcard(parts.keys.pending("echo")) == 0
    [usage] = await parts.store.rate_limits.list()
    assert (usage.used, usage.waiting) == (600, 1)
    events = [e for e in await parts.events() if e.task_id == second.task_id]
    assert events[-1].type == event_pb2.EVENT_TYPE_TASK_RATE_LIMITED
    assert events[-1].rate_limit == "openai"
    # Deleting the limit lets the task run at its next promotion.
    await parts.store.rate_limits.delete("openai")
    await parts.redis.zadd(parts.keys.due, {second.task_id: 0})
    await parts.scheduler.promote_due()
    assert await parts.scheduler.schedule_once() == 1
    assert agent


async def test_limit_definitions_are_checked(parts: Parts) -> None:
    with pytest.raises(InvalidArgument):
        await parts.store.rate_limits.set("Bad Name", 1, 1000)
    with pytest.raises(InvalidArgument):
        await parts.store.rate_limits.set("openai", 0, 1000)
    with pytest.raises(InvalidArgument):
        await parts.store.rate_limits.set("openai", 1, 10)
    with pytest.raises(NotFound):
        await parts.store.rate_limits.delete("openai")
    assert await parts.store.rate_limits.list() == []


async def test_workflow_steps_take_rate_units(stack: Stack) -> None:
    steps = [{"id": "a", "capability": "nobody", "rate_limit_units": {"openai": 5}}]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stack.client.submit_workflow({"name": "rated", "steps": steps})
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rate limit 'openai' does not exist" in refused.value.details()
    await stack.client.set_rate_limit("openai", 5, 3600)
    wf = await stack.client.submit_workflow({"name": "rated", "steps": steps})
    task = await stack.client.get(wf.steps[0].task_ids[0])
    assert dict(task.rate_limit_units) == {"openai": 5}
