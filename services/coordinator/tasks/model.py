"""Conversions between task hashes in Redis and hivewire.v1.Task messages."""

from __future__ import annotations

import json

from hivewire.core.tracing import trace_id_of
from hivewire.v1 import task_pb2
from hivewire_services.common import task_fields
from hivewire_services.common.clock import duration_from_seconds, ts_from_ms
from hivewire_services.common.submission import ValidTask

# What a Task message shows: every hash field but the scripts' own bookkeeping.
TASK_FIELDS = tuple(
    f.encode() for f in task_fields.TASK_FIELDS if f not in {"seq", "token", "held", "errors"}
)
STATE_AT = TASK_FIELDS.index(b"state")

TERMINAL_STATES = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
        task_pb2.TASK_STATE_TIMED_OUT,
    }
)


def _int(raw: bytes | None) -> int:
    return int(raw) if raw else 0


def _text(raw: bytes | None) -> str:
    return raw.decode() if raw else ""


def task_from_values(task_id: str, values: list[bytes | None]) -> task_pb2.Task:
    """A Task from HMGET values in TASK_FIELDS order."""
    v = dict(zip(TASK_FIELDS, values, strict=True))
    task = task_pb2.Task(
        task_id=task_id,
        capability=_text(v[b"capability"]),
        payload=v[b"payload"] or b"",
        state=_int(v[b"state"]),  # type: ignore[arg-type]
        result=v[b"result"] or b"",
        error=_text(v[b"error"]),
        attempt=_int(v[b"attempt"]),
        max_attempts=_int(v[b"max_attempts"]),
        priority=_int(v[b"priority"]),
        agent_id=_text(v[b"agent_id"]),
        required_labels=json.loads(v[b"labels"] or b"{}"),
        request_id=_text(v[b"request_id"]),
        workflow_id=_text(v[b"workflow_id"]),
        trace_id=trace_id_of(_text(v[b"trace_id"])) or _text(v[b"trace_id"]),
        step_id=_text(v[b"step_id"]),
    )
    for field, name in (
        (b"create_ms", "create_time"),
        (b"assign_ms", "assign_time"),
        (b"start_ms", "start_time"),
        (b"end_ms", "end_time"),
    ):
        ms = _int(v[field])
        if ms:
            getattr(task, name).CopyFrom(ts_from_ms(ms))
    timeout_ms = _int(v[b"timeout_ms"])
    if timeout_ms:
        task.attempt_timeout.CopyFrom(duration_from_seconds(timeout_ms / 1000))
    for field, name in _DURATIONS:
        ms = _int(v[field])
        if ms:
            getattr(task, name).CopyFrom(duration_from_seconds(ms / 1000))
    # Attempts counted against the budget restart after a dead letter is retried.
    task.max_attempts += _int(v[b"attempt_base"])
    return task


_DURATIONS = (
    (b"s2s_ms", "schedule_to_start_timeout"),
    (b"hb_ms", "heartbeat_timeout"),
    (b"backoff_ms", "retry_initial_backoff"),
    (b"backoff_max_ms", "retry_max_backoff"),
)


def set_durations(task: task_pb2.Task, spec: ValidTask) -> None:
    """Copy a submission's optional durations onto a Task message."""
    for ms, name in (
        (spec.schedule_to_start_ms, "schedule_to_start_timeout"),
        (spec.heartbeat_timeout_ms, "heartbeat_timeout"),
        (spec.retry_initial_backoff_ms, "retry_initial_backoff"),
        (spec.retry_max_backoff_ms, "retry_max_backoff"),
    ):
        if ms:
            getattr(task, name).CopyFrom(duration_from_seconds(ms / 1000))
