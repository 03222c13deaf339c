"""TaskStore against a real Redis: submit, idempotency, get, list, cancel, errors."""

from __future__ import annotations

import pytest

from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_batch, validate_task
from hivewire_services.coordinator.tasks.store import TaskStore
from tests.integration.coordinator_helpers import all_task_ids
from tests.settings import StackSettings


def spec(settings: StackSettings, **kw: object) -> object:
    return validate_task(task_pb2.SubmitTaskRequest(**kw), settings)  # type: ignore[arg-type]


@pytest.fixture
def store(redis: Redis, keys: Keys, settings: StackSettings) -> TaskStore:
    return TaskStore(redis, keys, settings)


async def test_submit_get_and_event(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    [task] = await store.submit([spec(settings, capability="echo", payload=b'{"a":1}', priority=5)])  # type: ignore[list-item]
    assert task.state == task_pb2.TASK_STATE_PENDING
    assert task.max_attempts == settings.default_max_attempts
    got = await store.get(task.task_id)
    assert got.payload == b'{"a":1}'
    assert got.priority == 5
    assert got.create_time.ToMilliseconds() > 0
    [(entry_id, fields)] = await redis.xrange(keys.events)
    event = decode_entry(entry_id, fields)
    assert event.type == event_pb2.EVENT_TYPE_TASK_SUBMITTED
    assert event.task_id == task.task_id


async def test_request_id_returns_the_same_task(store: TaskStore, settings: StackSettings) -> None:
    first = await store.submit([spec(settings, capability="echo", request_id="r-1")])  # type: ignore[list-item]
    again = await store.submit(
        [
            spec(settings, capability="echo", request_id="r-1"),
            spec(settings, capability="echo", request_id="r-1"),
        ]  # type: ignore[list-item]
    )
    assert again[0].task_id == first[0].task_id
    assert again[1].task_id == first[0].task_id
    page = await store.list(page_size=100, page_token="", state=0, capability="")
    assert len(page.tasks) == 1


async def test_list_pages_newest_first_with_filters(
    store: TaskStore, settings: StackSettings
) -> None:
    specs = [spec(settings, capability="a" if i % 2 else "b") for i in range(7)]
    created = await store.submit(specs)  # type: ignore[arg-type]
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list(page_size=3, page_token=token, state=0, capability="")
        seen += [t.task_id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert seen == [t.task_id for t in reversed(created)]
    only_a = await store.list(page_size=100, page_token="", state=0, capability="a")
    assert {t.task_id for t in only_a.tasks} == {t.task_id for t in created if t.capability == "a"}
    pending = await store.list(
        page_size=100, page_token="", state=task_pb2.TASK_STATE_PENDING, capability=""
    )
    assert len(pending.tasks) == 7
    with pytest.raises(InvalidArgument) as err:
        await store.list(page_size=3, page_token="garbage", state=0, capability="")
    assert err.value.violations[0].field == "page_token"


async def test_list_without_a_state_pages_through_every_state_in_order(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    """No all-tasks index is kept: a listing without a state merges the per-state indexes,
    newest first, each task once, across pages."""
    created = await store.submit([spec(settings, capability="echo") for _ in range(8)])  # type: ignore[misc]
    for task in created[1::3]:
        await store.cancel(task.task_id)
    assert await redis.exists(keys.tasks_index) == 0
    states = {t.task_id: t.state for t in await store.get_many([t.task_id for t in created])}
    assert set(states.values()) == {task_pb2.TASK_STATE_PENDING, task_pb2.TASK_STATE_CANCELLED}
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list(page_size=3, page_token=token, state=0, capability="")
        assert len(page.tasks) <= 3
        seen += [t.task_id for t in page.tasks]
        token = page.next_page_token
        if not token:
            break
    assert seen == [t.task_id for t in reversed(created)]
    cancelled = await store.list(
        page_size=100, page_token="", state=task_pb2.TASK_STATE_CANCELLED, capability=""
    )
    assert [t.task_id for t in cancelled.tasks] == [t.task_id for t in reversed(created[1::3])]


async def test_cancel_pending_then_finished(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    [task] = await store.submit([spec(settings, capability="echo")])  # type: ignore[list-item]
    cancelled = await store.cancel(task.task_id)
    assert cancelled.state == task_pb2.TASK_STATE_CANCELLED
    assert await redis.zcard(keys.pending("echo")) == 0
    with pytest.raises(FailedPrecondition):
        await store.cancel(task.task_id)
    with pytest.raises(NotFound):
        await store.cancel("0" * 32)


async def test_finished_tasks_expire_after_retention(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    done, live = await store.submit(
        [spec(settings, capability="echo"), spec(settings, capability="echo")]  # type: ignore[list-item]
    )
    await store.cancel(done.task_id)
    cancelled_index = keys.tasks_by_state(str(task_pb2.TASK_STATE_CANCELLED))
    assert await store.expire(cutoff_ms=0) == 0
    assert await store.expire(cutoff_ms=2**50) == 1  # only the finished one, never the pending
    with pytest.raises(NotFound):
        await store.get(done.task_id)
    assert await redis.zcard(cancelled_index) == 0
    assert await all_task_ids(redis, keys) == [live.task_id]
    assert await redis.zcard(keys.finished) == 0
    assert (await store.get(live.task_id)).state == task_pb2.TASK_STATE_PENDING


def test_validation_names_the_field(settings: StackSettings) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_task(task_pb2.SubmitTaskRequest(capability=""), settings)
    assert err.value.violations[0].field == "capability"
    with pytest.raises(InvalidArgument) as err:
        validate_task(task_pb2.SubmitTaskRequest(capability="Bad Name"), settings)
    assert err.value.violations[0].field == "capability"
    big = b"x" * (settings.max_payload_bytes + 1)
    with pytest.raises(ResourceExhausted) as exhausted:
        validate_batch(
            [
                task_pb2.SubmitTaskRequest(capability="echo"),
                task_pb2.SubmitTaskRequest(capability="echo", payload=big),
            ],
            settings,
        )
    assert exhausted.value.violations[0].field == "tasks[1].payload"
    with pytest.raises(InvalidArgument) as err:
        validate_batch([], settings)
    assert err.value.violations[0].field == "tasks"
    with pytest.raises(InvalidArgument) as err:
        validate_task(task_pb2.SubmitTaskRequest(capability="echo", priority=101), settings)
    assert err.value.violations[0].field == "priority"


async def test_submit_round_trips_binary_payloads_and_unicode_fields(
    store: TaskStore, settings: StackSettings
) -> None:
    """Text fields travel to submit.lua as JSON and payloads as raw args: nothing is altered."""
    payload = bytes(range(256)) + b'"\\\x00]'
    request_id = 'r-\u00e9\u2028\U0001f600"\\\n\x01'
    labels = {"zone": "eu-\u00fc\U0001f600", "gpu/model": 'a"b\\c'}
    [task] = await store.submit(
        [
            spec(
                settings,
                capability="echo",
                payload=payload,
                request_id=request_id,
                required_labels=labels,
            )
        ]  # type: ignore[list-item]
    )
    got = await store.get(task.task_id)
    assert got.payload == payload
    assert got.request_id == request_id
    assert dict(got.required_labels) == labels
    [again] = await store.submit([spec(settings, capability="echo", request_id=request_id)])  # type: ignore[list-item]
    assert again.task_id == task.task_id
