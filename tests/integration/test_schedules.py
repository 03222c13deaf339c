"""Schedules through the gateway: create, fire per tick, pause/resume, trigger, overlap, errors."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import pytest
from grpc_status import rpc_status

from hivewire.client import Client
from hivewire.v1 import event_pb2, schedule_pb2, task_pb2
from hivewire_services.common.errors import NotFound, field_violations
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import Principal, acting_as, current
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import ValidTask
from tests.integration.conftest import MakeStack
from tests.integration.schedule_helpers import assert_consecutive, scheduled_ticks
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(60)


async def _status(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def _field(err: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(err)
    assert status is not None
    return field_violations(status)[0].field


async def test_every_second_fires_once_per_tick_then_pause_resume_trigger(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    stack = await make_stack()
    c: Client = stack.client
    created = await c.create_schedule(
        "tick", every=1.0, capability="noop", payload={"x": 1}, overlap="allow-all"
    )
    assert created.HasField("next_fire_time") and not created.paused
    assert created.tenant == "default"
    listed, _ = await c.list_schedules()
    assert [s.name for s in listed] == ["tick"] and listed[0].HasField("next_fire_time")

    async def fired(n: int) -> list[int]:
        ticks = await scheduled_ticks(redis, keys, "tick")
        assert len(ticks) >= n
        return ticks

    ticks = await eventually(lambda: fired(3), within=10)
    assert_consecutive(ticks)
    task = await c.get((await c.get_schedule("tick")).last_run_id)
    assert task.capability == "noop" and task.payload == b'{"x":1}'

    paused = await c.pause_schedule("tick")
    assert paused.paused and not paused.HasField("next_fire_time")
    count = len(await scheduled_ticks(redis, keys, "tick"))
    assert await redis.zscore(keys.schedules_due, "tick") is None  # nothing left to fire
    # An observation window over two grid times: no tick fires while paused.
    await asyncio.sleep(2.2)
    assert len(await scheduled_ticks(redis, keys, "tick")) == count

    triggered = await c.trigger_schedule("tick")  # fires while paused too
    assert (await c.get(triggered.last_run_id)).capability == "noop"

    resumed = await c.resume_schedule("tick")
    assert not resumed.paused and resumed.HasField("next_fire_time")
    await eventually(lambda: fired(count + 2), within=10)
    after = (await scheduled_ticks(redis, keys, "tick"))[count:]
    assert_consecutive(after)

    s = await c.get_schedule("tick")
    assert s.fired_count == len(await scheduled_ticks(redis, keys, "tick")) + 1  # + the trigger
    await c.delete_schedule("tick")
    err = await _status(c.get_schedule("tick"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_overlap_skip_and_buffer_one(make_stack: MakeStack, redis: Redis, keys: Keys) -> None:
    """No agent runs `slow`: each run stays PENDING (active) until the test cancels it."""
    stack = await make_stack()
    c = stack.client
    await c.create_schedule("skip", every=1.0, capability="slow", overlap="skip")
    await c.create_schedule("buf", every=1.0, capability="slow", overlap="buffer-one")

    async def skipped(name: str, n: int) -> schedule_pb2.Schedule:
        s = await c.get_schedule(name)
        assert s.fired_count == 1 and s.skipped_count >= n
        return s

    s = await eventually(lambda: skipped("skip", 2), within=10)
    assert len(await scheduled_ticks(redis, keys, "skip")) == 1
    b = await eventually(lambda: skipped("buf", 1), within=10)
    assert b.buffered
    # The run ends: the buffered tick fires once, at once (not on the next grid time).
    await c.cancel(b.last_run_id)

    async def refired() -> schedule_pb2.Schedule:
        got = await c.get_schedule("buf")
        assert got.fired_count == 2 and not got.buffered
        return got

    again = await eventually(refired, within=5)
    assert again.last_run_id != b.last_run_id
    state = (await c.get(again.last_run_id)).state
    assert state == task_pb2.TASK_STATE_PENDING
    # Skipping: the running task is still the first one.
    await c.cancel(s.last_run_id)
    await eventually(lambda: _fired_twice(c, "skip"), within=5)


async def _fired_twice(c: Client, name: str) -> bool:
    return (await c.get_schedule(name)).fired_count >= 2


async def test_events_name_the_schedule(make_stack: MakeStack) -> None:
    stack = await make_stack()
    c = stack.client
    seen: list[event_pb2.Event] = []
    ready = asyncio.Event()

    async def follow() -> None:
        stream = c.events(schedule="ev", since_cursor="0-0")
        async for event in stream:
            seen.append(event)
            ready.set()

    reader = asyncio.create_task(follow())
    try:
        await c.create_schedule("other", every=60.0, capability="noop")
        await c.create_schedule("ev", every=60.0, capability="noop")
        await c.trigger_schedule("ev")
        await c.pause_schedule("ev")
        await c.delete_schedule("ev")

        def types() -> list[int]:
            got = [e.type for e in seen]
            assert len(got) >= 4
            return got

        got = await eventually(types, within=5)
        assert got == [
            event_pb2.EVENT_TYPE_SCHEDULE_UPDATED,
            event_pb2.EVENT_TYPE_SCHEDULE_FIRED,
            event_pb2.EVENT_TYPE_SCHEDULE_UPDATED,
            event_pb2.EVENT_TYPE_SCHEDULE_DELETED,
        ]
        assert {e.schedule for e in seen} == {"ev"}
        assert [e.message for e in seen if e.message] == ["created", "trigger", "paused"]
        assert seen[1].task_id
    finally:
        reader.cancel()


async def test_bad_requests_name_the_field_and_write_nothing(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    stack = await make_stack()
    c = stack.client
    cases = [
        ({"name": "a", "every": 0.5, "capability": "noop"}, "schedule.spec.interval"),
        ({"name": "a", "cron": "61 * * * *", "capability": "noop"}, "schedule.spec.cron"),
        ({"name": "a", "cron": "0 0 30 2 *", "capability": "noop"}, "schedule.spec.cron"),
        ({"name": "a", "cron": "0 9 * * *", "time_zone": "Mars/Base", "capability": "noop"},
         "schedule.spec.time_zone"),
        ({"name": "bad name", "every": 1.0, "capability": "noop"}, "schedule.name"),
        ({"name": "a", "every": 1.0, "capability": "Bad Cap"}, "schedule.target.task.capability"),
    ]  # fmt: skip
    for kwargs, field in cases:
        err = await _status(c.create_schedule(**kwargs))  # type: ignore[arg-type]
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, kwargs
        assert _field(err) == field, kwargs
    assert await redis.zcard(keys.schedules_index) == 0
    await c.create_schedule("a", every=5.0, capability="noop")
    err = await _status(c.create_schedule("a", every=5.0, capability="noop"))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = await _status(c.pause_schedule("missing"))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_command_target_is_expanded_by_the_gateway(make_stack: MakeStack) -> None:
    stack = await make_stack(commands_dir="commands")
    c = stack.client
    s = await c.create_schedule(
        "nightly", cron="0 3 * * *", time_zone="Europe/Berlin", command="diamond",
        params={"text": "hello"},
    )  # fmt: skip
    assert s.target.WhichOneof("kind") == "workflow"
    assert s.target.workflow.command == "diamond"
    triggered = await c.trigger_schedule("nightly")
    wf = await c.get_workflow(triggered.last_run_id)
    assert wf.command == "diamond" and len(wf.steps) == len(s.target.workflow.steps)
    err = await _status(c.create_schedule("x", every=1.0, command="nope"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_schedule_belongs_to_its_creators_tenant(make_stack: MakeStack) -> None:
    """Other tenants neither list nor see it; its runs are created as its tenant."""
    stack = await make_stack()
    assert stack.coordinator is not None
    firing = stack.coordinator.schedules
    acme = Principal(name="alice", role="client", tenant="acme")
    other = Principal(name="bob", role="client", tenant="other")
    spec = schedule_pb2.ScheduleSpec()
    spec.interval.FromSeconds(3600)
    request = schedule_pb2.Schedule(
        name="acme-job",
        spec=spec,
        target=schedule_pb2.ScheduleTarget(task=task_pb2.SubmitTaskRequest(capability="noop")),
    )
    with acting_as(acme):
        created = await firing.store.create(request)
    assert created.tenant == "acme"
    with acting_as(other):
        assert (await firing.store.list(page_size=10, page_token="")).schedules == []
        with pytest.raises(NotFound):
            await firing.store.get("acme-job")
        with pytest.raises(NotFound):
            await firing.trigger("acme-job")
    # The real store, wrapped to record whom it runs as (a Task carries no tenant field yet).
    seen: list[str] = []
    submit = firing.tasks.submit

    async def spy(specs: Sequence[ValidTask]) -> list[task_pb2.Task]:
        seen.append(current().tenant)
        return await submit(specs)

    firing.tasks.submit = spy  # type: ignore[method-assign]
    with acting_as(acme):
        fired = await firing.trigger("acme-job")
    assert fired.fired_count == 1 and seen == ["acme"]
    listed, _ = await stack.client.list_schedules()  # the local admin sees every tenant
    assert [s.name for s in listed] == ["acme-job"]
