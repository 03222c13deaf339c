"""Agents' results and errors bounded as the coordinator applies them.

Whatever an agent writes to the results stream (directly on Redis, or through a gateway), a
result larger than `max_result_bytes` is not stored: the attempt fails permanently with an error
that says so. An error longer than `max_error_bytes` is cut, with a marker saying how long it was.
"""

from __future__ import annotations

from hivewire.v1 import stream_pb2


def bounded_error(error: str, max_bytes: int) -> str:
    """`error` as at most `max_bytes` bytes of UTF-8, ending in a marker when it was cut."""
    raw = error.encode()
    if len(raw) <= max_bytes:
        return error
    marker = f" [truncated: {len(raw)} bytes, over the limit of {max_bytes}]"
    keep = max(0, max_bytes - len(marker.encode()))
    return raw[:keep].decode(errors="ignore") + marker


def bound_result(result: stream_pb2.TaskResult, max_result: int, max_error: int) -> None:
    """Bound a result in place before it is applied."""
    size = len(result.result)
    if size > max_result:
        result.result = b""
        if result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED:
            result.outcome = stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
            result.error = (
                f"ResultTooLarge: the result is {size} bytes, over the limit of {max_result}"
                " (HIVEWIRE_MAX_RESULT_BYTES)"
            )
    if len(result.error) > max_error // 4:  # only then can its UTF-8 exceed the bound
        result.error = bounded_error(result.error, max_error)
