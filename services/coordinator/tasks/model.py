"""Conversions between task hashes in Redis and hivewire.v1.Task messages."""

from __future__ import annotations

import json
from collections.abc import Mapping

from hivewire.core.clock import set_ms
from hivewire.core.tracing import trace_id_of
from hivewire.v1 import stream_pb2, task_pb2
from hivewire_services.common import task_fields
from hivewire_services.common.task_fields import NewTask
from hivewire_services.common.tenancy import tenant_of

# What a Task message shows: every hash field but the scripts' own bookkeeping.
TASK_FIELDS = tuple(
    f.encode()
    for f in task_fields.TASK_FIELDS
    if f not in {"seq", "token", "held", "errors", "fair_tag", "children"}
)
STATE_AT = TASK_FIELDS.index(b"state")
_FIELD_NAMES = tuple(f.decode() for f in TASK_FIELDS)

TERMINAL_STATES = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
        task_pb2.TASK_STATE_TIMED_OUT,
    }
)


Raw = bytes | str | int | None
"""A hash field's value: bytes as HMGET returns it, str or int as a submission holds it."""


def _int(raw: Raw) -> int:
    return int(raw) if raw else 0


def _text(raw: Raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode()
    return str(raw) if raw else ""


def _bytes(raw: Raw) -> bytes:
    return raw if isinstance(raw, bytes) else b""


# Hash field -> the Task's Timestamp or Duration field it fills (milliseconds; 0 is unset).
_TIMES = (
    ("create_ms", "create_time"),
    ("assign_ms", "assign_time"),
    ("start_ms", "start_time"),
    ("end_ms", "end_time"),
    ("timeout_ms", "attempt_timeout"),
    ("s2s_ms", "schedule_to_start_timeout"),
    ("hb_ms", "heartbeat_timeout"),
    ("backoff_ms", "retry_initial_backoff"),
    ("backoff_max_ms", "retry_max_backoff"),
    ("progress_ms", "progress_timeout"),
    ("due_ms", "scheduled_time"),
)


def task_from_fields(task_id: str, v: Mapping[str, Raw]) -> task_pb2.Task:
    """A Task from task hash fields by name; a missing field reads as empty."""
    task = task_pb2.Task(
        task_id=task_id,
        capability=_text(v.get("capability")),
        payload=_bytes(v.get("payload")),
        state=_int(v.get("state")),  # type: ignore[arg-type]
        result=_bytes(v.get("result")),
        error=_text(v.get("error")),
        attempt=_int(v.get("attempt")),
        # Attempts counted against the budget restart after a dead letter is retried.
        max_attempts=_int(v.get("max_attempts")) + _int(v.get("attempt_base")),
        priority=_int(v.get("priority")),
        agent_id=_text(v.get("agent_id")),
        required_labels=json.loads(_text(v.get("labels")) or "{}"),
        request_id=_text(v.get("request_id")),
        workflow_id=_text(v.get("workflow_id")),
        trace_id=trace_id_of(_text(v.get("trace_id"))) or _text(v.get("trace_id")),
        step_id=_text(v.get("step_id")),
        output_bytes=_int(v.get("output_bytes")),
        output_dropped_bytes=_int(v.get("output_dropped")),
        # A SUCCEEDED task drops both at their defaults (tasklib.lua drop_defaults).
        fairness_key=_text(v.get("fairness_key")) or tenant_of(v.get("tenant")),
        fairness_weight=_int(v.get("fairness_weight")) or 1,
        parent_task_id=_text(v.get("parent_task_id")),
        tenant=tenant_of(v.get("tenant")),
        concurrency_key=_text(v.get("ckey")),
        concurrency_limit=_int(v.get("climit")),
        concurrency_strategy=_int(v.get("cstrategy")),  # type: ignore[arg-type]
        rate_limit_units=json.loads(_text(v.get("rate")) or "{}"),
        waiting_reason=_text(v.get("waiting")),
    )
    for field, name in _TIMES:
        set_ms(task, name, _int(v.get(field)))
    progress = _bytes(v.get("progress"))
    if progress:
        task.progress.CopyFrom(stream_pb2.TaskProgress.FromString(progress))
    return task


def task_from_values(task_id: str, values: list[bytes | None]) -> task_pb2.Task:
    """A Task from HMGET values in TASK_FIELDS order."""
    return task_from_fields(task_id, dict(zip(_FIELD_NAMES, values, strict=True)))


# (NewTask index, Task field) of the _TIMES a submission carries, for task_from_new.
_NEW_TIMES = tuple(
    (NewTask._fields.index(field), name) for field, name in _TIMES if field in NewTask._fields
)


def task_from_new(
    new: NewTask, payload: bytes, create_ms: int, labels: Mapping[str, str]
) -> task_pb2.Task:
    """The PENDING Task a submission creates, as a later read of its hash shows it
    (`task_from_fields` of the same fields; built directly, as this runs per submitted task).
    `labels` are the required labels `new.labels` encodes."""
    task = task_pb2.Task(
        task_id=new.task_id,
        capability=new.capability,
        payload=payload,
        state=task_pb2.TASK_STATE_SCHEDULED
        if new.due_ms > create_ms
        else task_pb2.TASK_STATE_PENDING,
        max_attempts=new.max_attempts,
        priority=new.priority,
        required_labels=labels,
        request_id=new.request_id,
        workflow_id=new.workflow_id,
        trace_id=trace_id_of(new.trace_id) or new.trace_id,
        step_id=new.step_id,
        tenant=tenant_of(new.tenant),
        fairness_key=new.fairness_key or tenant_of(new.tenant),
        fairness_weight=new.fairness_weight or 1,
        concurrency_key=new.ckey,
        concurrency_limit=new.climit,
        concurrency_strategy=new.cstrategy,  # type: ignore[arg-type]
        rate_limit_units=json.loads(new.rate or "{}"),
    )
    task.create_time.FromMilliseconds(create_ms)
    for i, name in _NEW_TIMES:
        if new[i]:
            getattr(task, name).FromMilliseconds(new[i])
    return task


def assigned_at(task: task_pb2.Task, agent_id: str, assign_ms: int) -> None:
    """A task `task_from_new` built, as its first attempt's assignment (eager dispatch) left it."""
    task.state = task_pb2.TASK_STATE_ASSIGNED
    task.attempt = 1
    task.agent_id = agent_id
    task.assign_time.FromMilliseconds(assign_ms)
