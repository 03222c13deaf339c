"""Per-task delivery settings: optional durations, positive and bounded, named in errors."""

from __future__ import annotations

import pytest

from hivewire.v1 import task_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.submission import validate_batch, validate_task

NAMES = (
    "schedule_to_start_timeout",
    "heartbeat_timeout",
    "retry_initial_backoff",
    "retry_max_backoff",
    "progress_timeout",
)


def test_unset_durations_mean_the_defaults() -> None:
    spec = validate_task(task_pb2.SubmitTaskRequest(capability="x"), SubmissionSettings())
    assert (
        spec.schedule_to_start_ms,
        spec.heartbeat_timeout_ms,
        spec.retry_initial_backoff_ms,
        spec.retry_max_backoff_ms,
        spec.progress_timeout_ms,
    ) == (0, 0, 0, 0, 0)
    assert spec.max_attempts == 3


def test_set_durations_are_kept_in_milliseconds() -> None:
    req = task_pb2.SubmitTaskRequest(capability="x")
    for i, name in enumerate(NAMES, start=1):
        getattr(req, name).FromMilliseconds(i * 1500)
    spec = validate_task(req, SubmissionSettings())
    assert spec.schedule_to_start_ms == 1500
    assert spec.heartbeat_timeout_ms == 3000
    assert spec.retry_initial_backoff_ms == 4500
    assert spec.retry_max_backoff_ms == 6000
    assert spec.progress_timeout_ms == 7500


@pytest.mark.parametrize("name", [*NAMES, "attempt_timeout"])
@pytest.mark.parametrize("seconds", [0, -1, 31 * 24 * 3600, 315_576_000_000])
def test_bad_durations_name_their_field(name: str, seconds: int) -> None:
    req = task_pb2.SubmitTaskRequest(capability="x")
    getattr(req, name).FromSeconds(seconds)
    with pytest.raises(InvalidArgument) as err:
        validate_batch([task_pb2.SubmitTaskRequest(capability="x"), req], SubmissionSettings())
    assert [v.field for v in err.value.violations] == [f"tasks[1].{name}"]


@pytest.mark.parametrize("seconds, nanos", [(3600, -1), (0, 1_000_000_000)])
def test_a_start_at_that_is_no_valid_time_is_named(seconds: int, nanos: int) -> None:
    req = task_pb2.SubmitTaskRequest(capability="x")
    req.start_at.seconds, req.start_at.nanos = seconds, nanos
    with pytest.raises(InvalidArgument) as err:
        validate_batch([task_pb2.SubmitTaskRequest(capability="x"), req], SubmissionSettings())
    assert [v.field for v in err.value.violations] == ["tasks[1].start_at"]


@pytest.mark.parametrize(
    "traceparent",
    [
        "not-a-traceparent",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",  # all-zero trace id
        "00-" + "A" * 32 + "-" + "1" * 16 + "-01",  # upper case
        "01-" + "a" * 32 + "-" + "1" * 16 + "-01-extra",
    ],
)
def test_a_task_traceparent_must_be_a_w3c_one(traceparent: str) -> None:
    req = task_pb2.SubmitTaskRequest(capability="x", traceparent=traceparent)
    with pytest.raises(InvalidArgument) as err:
        validate_task(req, SubmissionSettings())
    assert [v.field for v in err.value.violations] == ["traceparent"]


def test_a_task_traceparent_is_kept() -> None:
    given = "00-" + "a" * 32 + "-" + "1" * 16 + "-01"
    req = task_pb2.SubmitTaskRequest(capability="x", traceparent=given)
    assert validate_task(req, SubmissionSettings()).trace_id == given
    assert (
        validate_task(task_pb2.SubmitTaskRequest(capability="x"), SubmissionSettings()).trace_id
        == ""
    )


def test_a_task_traceparent_in_the_calls_own_trace_keeps_the_calls_span() -> None:
    """Named and current in one trace: the task descends from the current (submitting RPC's)
    span, as when the request names none; in another trace, the named one wins."""
    from hivewire.core import tracing

    named = "00-" + "a" * 32 + "-" + "1" * 16 + "-01"
    same_trace = "00-" + "a" * 32 + "-" + "2" * 16 + "-01"
    other_trace = "00-" + "b" * 32 + "-" + "3" * 16 + "-01"
    req = task_pb2.SubmitTaskRequest(capability="x", traceparent=named)
    for current, kept in ((same_trace, same_trace), (other_trace, named)):
        token = tracing.attach(tracing.context_of(current))  # type: ignore[arg-type]
        try:
            assert validate_task(req, SubmissionSettings()).trace_id == kept
        finally:
            tracing.detach(token)
