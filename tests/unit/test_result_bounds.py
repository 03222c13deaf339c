"""Results and errors bounded as the coordinator applies them."""

from __future__ import annotations

from hivewire.v1 import stream_pb2
from hivewire_services.coordinator.tasks.result_bounds import bound_result, bounded_error

SUCCEEDED = stream_pb2.TASK_OUTCOME_SUCCEEDED
FAILED = stream_pb2.TASK_OUTCOME_FAILED


def test_a_result_over_the_limit_fails_the_attempt_for_good() -> None:
    result = stream_pb2.TaskResult(outcome=SUCCEEDED, result=b"x" * 101)
    bound_result(result, max_result=100, max_error=1000)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
    assert result.result == b""
    assert result.error.startswith("ResultTooLarge: the result is 101 bytes, over the limit of 100")
    at_limit = stream_pb2.TaskResult(outcome=SUCCEEDED, result=b"x" * 100)
    bound_result(at_limit, max_result=100, max_error=1000)
    assert (at_limit.outcome, at_limit.result, at_limit.error) == (SUCCEEDED, b"x" * 100, "")


def test_a_failure_keeps_its_outcome_and_loses_an_oversized_result() -> None:
    result = stream_pb2.TaskResult(outcome=FAILED, result=b"x" * 101, error="boom")
    bound_result(result, max_result=100, max_error=1000)
    assert (result.outcome, result.result, result.error) == (FAILED, b"", "boom")


def test_long_errors_are_cut_on_a_character_boundary_with_a_marker() -> None:
    error = "é" * 5000  # 10,000 bytes of UTF-8
    cut = bounded_error(error, 1000)
    assert len(cut.encode()) <= 1000
    assert cut.endswith(" [truncated: 10000 bytes, over the limit of 1000]")
    assert cut.startswith("é" * 400)
    assert bounded_error("short", 1000) == "short"
    result = stream_pb2.TaskResult(outcome=FAILED, error=error)
    bound_result(result, max_result=100, max_error=1000)
    assert result.error == cut
