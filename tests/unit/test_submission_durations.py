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


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seconds", [0, -1, 31 * 24 * 3600])
def test_bad_durations_name_their_field(name: str, seconds: int) -> None:
    req = task_pb2.SubmitTaskRequest(capability="x")
    getattr(req, name).FromSeconds(seconds)
    with pytest.raises(InvalidArgument) as err:
        validate_batch([task_pb2.SubmitTaskRequest(capability="x"), req], SubmissionSettings())
    assert [v.field for v in err.value.violations] == [f"tasks[1].{name}"]
