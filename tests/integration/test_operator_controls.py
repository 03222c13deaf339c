"""Operator controls through the gateway: pause/resume a capability's queue, drain an agent."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.v1 import agent_pb2, event_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from tests.integration.stack import Stack
from tests.waiting import eventually

PENDING = task_pb2.TASK_STATE_PENDING
SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED


def echo(ctx: TaskContext) -> object:
    return ctx.payload


async def queue_events(stack: Stack) -> list[tuple[int, str]]:
    assert stack.coordinator is not None
    entries = await stack.coordinator.redis.xrange(stack.coordinator.keys.events)
    wanted = {event_pb2.EVENT_TYPE_QUEUE_PAUSED, event_pb2.EVENT_TYPE_QUEUE_RESUMED}
    events = (decode_entry(i, f) for i, f in entries)
    return [(e.type, e.capability) for e in events if e.type in wanted]


async def test_pause_holds_tasks_pending_and_resume_assigns_them(stack: Stack) -> None:
    await stack.agent("a", {"echo": echo, "other": echo})
    queue = await stack.client.pause_queue("echo")
    assert queue.paused and queue.HasField("pause_time")
    again = await stack.client.pause_queue("echo")  # idempotent: one event, the first time
    assert again.pause_time == queue.pause_time
    held = [await stack.client.submit("echo", {"i": i}) for i in range(3)]
    other = await stack.client.submit_and_wait("other", {"x": 1}, timeout=30)
    assert other.state == SUCCEEDED  # only the paused capability stops
    scheduler = stack.coordinator.scheduler if stack.coordinator else None
    assert scheduler is not None
    assert await scheduler.schedule_once() == 0  # a full pass assigns nothing paused
    assert await stack.states([t.task_id for t in held]) == [PENDING] * 3
    queues = {q.capability: q for q in await stack.client.list_queues()}
    assert queues["echo"].paused and queues["echo"].pending == 3
    assert not queues["other"].paused and queues["other"].pending == 0
    resumed = await stack.client.resume_queue("echo")
    assert not resumed.paused and not resumed.HasField("pause_time")
    for task in held:
        assert (await stack.client.wait(task.task_id, timeout=30)).state == SUCCEEDED
    assert await queue_events(stack) == [
        (event_pb2.EVENT_TYPE_QUEUE_PAUSED, "echo"),
        (event_pb2.EVENT_TYPE_QUEUE_RESUMED, "echo"),
    ]


async def test_bad_capability_is_refused(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.pause_queue("Not A Capability!")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stack.coordinator is not None
    assert not await stack.coordinator.redis.exists(stack.coordinator.keys.paused_queues)


async def test_drain_unknown_agent_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.drain_agent("0" * 32)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.drain_agent("nope")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_drained_agent_finishes_its_task_gets_no_more_and_exits(
    stack: Stack, transport: str
) -> None:
    release = asyncio.Event()

    async def hold(ctx: TaskContext) -> str:
        await release.wait()
        return "held"

    # A drain grace far longer than the test: the held task must finish, never be abandoned.
    first = await stack.agent(
        "first", {"work": hold, "quick": echo}, transport=transport, drain_grace=60.0
    )
    first_id = first.agent_id
    held = await stack.client.submit("work")

    async def running() -> bool:
        return (await stack.client.get(held.task_id)).state == task_pb2.TASK_STATE_RUNNING

    await eventually(running, within=30, message="the held task running")
    second = await stack.agent("second", {"quick": echo}, transport=transport)
    drained = await stack.client.drain_agent(first_id)
    assert drained.state == agent_pb2.AGENT_STATE_DRAINING
    assert stack.coordinator is not None and stack.coordinator.scheduler is not None
    cache = stack.coordinator.scheduler.cache
    await eventually(lambda: not cache.agents[first_id].online, message="cache sees it")
    quick = [await stack.client.submit("quick", {"i": i}) for i in range(4)]
    for task in quick:
        done = await stack.client.wait(task.task_id, timeout=30)
        assert (done.state, done.agent_id) == (SUCCEEDED, second.agent_id)
    release.set()
    done = await stack.client.wait(held.task_id, timeout=30)
    assert (done.state, done.agent_id, done.result) == (SUCCEEDED, first_id, b"held")

    async def gone() -> bool:
        agents, _ = await stack.client.list_agents(include_offline=True)
        states = {a.agent_id: a.state for a in agents}
        # Deregistered, and stopped as on SIGTERM (no identity left).
        return states.get(first_id) == agent_pb2.AGENT_STATE_OFFLINE and first.agent_id == ""

    await eventually(gone, within=30, message="the drained agent exiting")
