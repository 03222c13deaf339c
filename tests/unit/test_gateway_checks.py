"""Edge checks of the gateway and the events filter, without servers."""

from __future__ import annotations

from typing import Any

import pytest

from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.errors import HivewireError, InvalidArgument, ResourceExhausted
from hivewire_services.gateway import checks
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.events.hub import EventFilter, parse_stream_id

SETTINGS = GatewaySettings(max_payload_bytes=10, max_batch=3)
TASK = "ab" * 16


def _fields(err: HivewireError) -> list[str]:
    return [v.field for v in err.violations]


def test_submit_payload_limit_names_field() -> None:
    checks.check_submit(task_pb2.SubmitTaskRequest(capability="echo", payload=b"x" * 10), SETTINGS)
    with pytest.raises(ResourceExhausted) as info:
        checks.check_submit(
            task_pb2.SubmitTaskRequest(capability="echo", payload=b"x" * 11), SETTINGS
        )
    assert info.value.reason == "PAYLOAD_TOO_LARGE"
    assert _fields(info.value) == ["payload"]


@pytest.mark.parametrize(
    ("tasks", "error", "field"),
    [
        ([], InvalidArgument, "tasks"),
        ([task_pb2.SubmitTaskRequest(capability="a")] * 4, ResourceExhausted, "tasks"),
        (
            [
                task_pb2.SubmitTaskRequest(capability="a"),
                task_pb2.SubmitTaskRequest(capability="a", payload=b"y" * 11),
            ],
            ResourceExhausted,
            "tasks[1].payload",
        ),
        (
            [task_pb2.SubmitTaskRequest(capability="a"), task_pb2.SubmitTaskRequest()],
            InvalidArgument,
            "tasks[1].capability",
        ),
        (
            [task_pb2.SubmitTaskRequest(capability="a", priority=101)],
            InvalidArgument,
            "tasks[0].priority",
        ),
    ],
)
def test_batch_errors_name_the_field(
    tasks: list[task_pb2.SubmitTaskRequest], error: type[HivewireError], field: str
) -> None:
    with pytest.raises(error) as info:
        checks.check_batch(tasks, SETTINGS)
    assert _fields(info.value) == [field]


def test_parse_stream_id_orders_numerically() -> None:
    assert parse_stream_id("10-2", "since_cursor") > parse_stream_id("9-99", "since_cursor")
    assert parse_stream_id("10-10", "since_cursor") > parse_stream_id("10-9", "since_cursor")
    top = 2**64 - 1
    assert parse_stream_id(f"{top}-{top}", "since_cursor") == (top, top)
    out_of_range = (f"{top + 1}-0", f"0-{top + 1}", "99999999999999999999-0", "1" * 21 + "-0")
    not_ascii = ("\u0661-0",)  # an Arabic-Indic digit: int() takes it, Redis would not
    for bad in ("", "10", "10-", "-1", "a-b", "1-2-3", "$", "0-0 ", *out_of_range, *not_ascii):
        with pytest.raises(InvalidArgument) as info:
            parse_stream_id(bad, "since_cursor")
        assert _fields(info.value) == ["since_cursor"]


@pytest.mark.parametrize(
    ("check", "request_", "field"),
    [
        (
            checks.list_dead_letters,
            task_pb2.ListDeadLettersRequest(page_token=f"{2**64}-0"),
            "page_token",
        ),
        (
            checks.retry_dead_letter,
            task_pb2.RetryDeadLetterRequest(dead_letter_id=f"1-{2**64}"),
            "dead_letter_id",
        ),
    ],
)
def test_dead_letter_ids_past_64_bits_name_the_field(check: Any, request_: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check(request_, SETTINGS)
    assert _fields(info.value) == [field]


def test_cursors_past_64_bits_name_the_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        checks.event_subscription(event_pb2.StreamEventsRequest(since_cursor=f"{2**64}-0"))
    assert _fields(info.value) == ["since_cursor"]
    with pytest.raises(InvalidArgument) as info:
        checks.task_output(
            task_pb2.StreamTaskOutputRequest(task_id=TASK, after_cursor=f"0-{2**64}")
        )
    assert _fields(info.value) == ["after_cursor"]


def test_event_filter_requires_every_set_criterion() -> None:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TASK_SUCCEEDED, task_id=TASK, capability="echo"
    )
    assert EventFilter().matches(event)
    assert EventFilter(task_id=TASK, capability="echo").matches(event)
    assert not EventFilter(task_id=TASK, capability="other").matches(event)
    assert EventFilter(types=frozenset({event_pb2.EVENT_TYPE_TASK_SUCCEEDED})).matches(event)
    assert not EventFilter(types=frozenset({event_pb2.EVENT_TYPE_TASK_FAILED})).matches(event)
    assert not EventFilter(agent_id="cd" * 16).matches(event)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (event_pb2.StreamEventsRequest(task_id="nope"), "task_id"),
        (event_pb2.StreamEventsRequest(agent_id="X" * 32), "agent_id"),
        (event_pb2.StreamEventsRequest(capability="Bad Cap"), "capability"),
        (event_pb2.StreamEventsRequest(types=[event_pb2.EVENT_TYPE_UNSPECIFIED]), "types"),
        (event_pb2.StreamEventsRequest(since_cursor="yesterday"), "since_cursor"),
    ],
)
def test_event_subscription_rejects_bad_requests(
    request_: event_pb2.StreamEventsRequest, field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        checks.event_subscription(request_)
    assert _fields(info.value) == [field]


def test_event_subscription_builds_filter_and_cursor() -> None:
    flt, since = checks.event_subscription(
        event_pb2.StreamEventsRequest(
            task_id=TASK, types=[event_pb2.EVENT_TYPE_TASK_FAILED], since_cursor="5-1"
        )
    )
    assert flt == EventFilter(task_id=TASK, types=frozenset({event_pb2.EVENT_TYPE_TASK_FAILED}))
    assert since == (5, 1)
    assert checks.event_subscription(event_pb2.StreamEventsRequest())[1] is None
