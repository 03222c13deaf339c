"""Delayed tasks (start_after / start_at) through the gateway, against the in-process stack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.v1 import event_pb2, task_pb2, workflow_pb2
from hivewire_services.common.errors import field_violations
from hivewire_services.common.events import decode_entry
from tests.integration.coordinator_helpers import all_task_ids
from tests.integration.stack import Stack
from tests.integration.test_gateway_forwarding import rich_status

SCHEDULED = task_pb2.TASK_STATE_SCHEDULED
# How late a delayed task may start after its due time: one scheduler pass (woken by its
# alarm) plus delivery on a busy two-core machine; far below the 30 s safety pass.
PASS_SLACK = 2.0


def echo(ctx: TaskContext) -> Any:
    return ctx.payload


def ms(ts: Any) -> int:
    return int(ts.ToMilliseconds())


async def event_types(stack: Stack, task_id: str) -> list[int]:
    assert stack.coordinator is not None
    entries = await stack.coordinator.redis.xrange(stack.coordinator.keys.events)
    return [e.type for e in (decode_entry(i, f) for i, f in entries) if e.task_id == task_id]


async def test_delayed_task_waits_then_starts_within_a_pass(stack: Stack) -> None:
    await stack.agent("a", {"echo": echo})
    task = await stack.client.submit("echo", {"x": 1}, start_after=1.0)
    assert task.state == SCHEDULED
    assert ms(task.scheduled_time) - ms(task.create_time) == 1000
    got = await stack.client.get(task.task_id)
    assert got.state in (SCHEDULED, task_pb2.TASK_STATE_PENDING, task_pb2.TASK_STATE_ASSIGNED,
                         task_pb2.TASK_STATE_RUNNING, task_pb2.TASK_STATE_SUCCEEDED)  # fmt: skip
    assert ms(got.scheduled_time) == ms(task.scheduled_time)
    done = await stack.client.wait(task.task_id, timeout=30)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED
    due = ms(done.scheduled_time)
    assert ms(done.assign_time) >= due
    assert ms(done.start_time) >= due
    assert ms(done.start_time) - due <= PASS_SLACK * 1000, ms(done.start_time) - due
    types = await event_types(stack, task.task_id)
    assert types[:3] == [
        event_pb2.EVENT_TYPE_TASK_SCHEDULED,
        event_pb2.EVENT_TYPE_TASK_DUE,
        event_pb2.EVENT_TYPE_TASK_ASSIGNED,
    ]


async def test_scheduled_task_is_listed_and_cancellable(stack: Stack) -> None:
    await stack.agent("a", {"echo": echo})
    at = datetime.now(UTC) + timedelta(hours=1)
    task = await stack.client.submit("echo", start_at=at)
    assert task.state == SCHEDULED
    assert abs(ms(task.scheduled_time) - int(at.timestamp() * 1000)) <= 50
    listed, _ = await stack.client.list_tasks(state=SCHEDULED)
    assert [t.task_id for t in listed] == [task.task_id]
    cancelled = await stack.client.cancel(task.task_id)
    assert cancelled.state == task_pb2.TASK_STATE_CANCELLED
    assert stack.coordinator is not None
    redis, keys = stack.coordinator.redis, stack.coordinator.keys
    assert await redis.zscore(keys.due, task.task_id) is None
    assert await redis.zcard(keys.tasks_by_state(str(SCHEDULED))) == 0
    assert (await stack.client.list_tasks(state=SCHEDULED))[0] == []


async def test_start_at_in_the_past_starts_now(stack: Stack) -> None:
    task = await stack.client.submit("echo", start_at=datetime.now(UTC) - timedelta(days=3))
    assert task.state == task_pb2.TASK_STATE_PENDING
    assert not task.HasField("scheduled_time")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start_after": 5.0, "start_at": datetime.now(UTC) + timedelta(hours=1)}, "start_at"),
        ({"start_after": timedelta(days=366)}, "start_after"),
        ({"start_after": -1.0}, "start_after"),
        ({"start_at": datetime.now(UTC) + timedelta(days=366)}, "start_at"),
    ],
)
async def test_bad_delays_are_refused_and_store_nothing(
    stack: Stack, kwargs: dict[str, Any], field: str
) -> None:
    assert stack.coordinator is not None
    redis, keys = stack.coordinator.redis, stack.coordinator.keys
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.submit("echo", **kwargs)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(rich_status(err.value))] == [field]
    assert await all_task_ids(redis, keys) == []
    assert await redis.zcard(keys.due) == 0


async def test_schedule_to_start_counts_from_the_due_time(stack: Stack) -> None:
    task = await stack.client.submit("nobody", start_after=600.0, schedule_to_start_timeout=5.0)
    assert stack.coordinator is not None
    redis, keys = stack.coordinator.redis, stack.coordinator.keys
    deadline = await redis.zscore(keys.start_deadlines, task.task_id)
    assert deadline == ms(task.scheduled_time) + 5000


async def test_delayed_workflow_step_counts_from_when_it_is_ready(stack: Stack) -> None:
    await stack.agent("a", {"echo": echo})
    wf = await stack.client.submit_workflow(
        [
            {"id": "first", "capability": "echo", "payload": {"n": 1}},
            {"id": "later", "capability": "echo", "depends_on": ["first"], "start_after": 1},
        ]
    )
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    steps = {s.step_id: s for s in done.steps}
    first = await stack.client.get(steps["first"].task_ids[0])
    later = await stack.client.get(steps["later"].task_ids[0])
    assert ms(later.scheduled_time) >= ms(first.end_time) + 1000
    assert ms(later.create_time) >= ms(first.end_time)
    assert ms(later.start_time) >= ms(later.scheduled_time)
    assert ms(later.start_time) - ms(later.scheduled_time) <= PASS_SLACK * 1000


async def test_a_scheduled_task_shows_in_snapshots_and_stats(stack: Stack) -> None:
    task = await stack.client.submit("nobody-runs-this", {}, start_after=3600)
    request = event_pb2.StreamEventsRequest(include_snapshot=True, task_id=task.task_id)
    snapshot = []
    async for frame in stack.client.stream(request, resume=False):
        if frame.WhichOneof("frame") == "snapshot_complete":
            break
        if frame.WhichOneof("frame") == "event" and frame.event.snapshot:
            snapshot.append(frame.event)
    assert [(e.type, e.task_state) for e in snapshot] == [
        (event_pb2.EVENT_TYPE_TASK_SCHEDULED, SCHEDULED)
    ]
    async with asyncio.timeout(15):
        async for stats in stack.client.watch_stats(interval=0.2):
            if stats.tasks_by_state.get("SCHEDULED", 0) >= 1:
                break
