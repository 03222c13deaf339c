"""Validation of task submissions, shared by the gateway (edge) and the coordinator (store)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from hivewire.core.clock import ms_of, now_ms
from hivewire.core.tracing import context_of, traceparent_of
from hivewire.v1 import task_pb2, workflow_pb2
from hivewire_services.common import principal
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument, ResourceExhausted
from hivewire_services.common.validation import (
    MAX_CONCURRENCY_LIMIT,
    MAX_RATE_LIMIT_UNITS,
    MAX_RATE_LIMITS_PER_TASK,
    MAX_REQUEST_ID,
    check_capability,
    check_fairness,
    check_labels,
    check_name,
    check_start_delay,
)

MAX_PRIORITY = 100
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class ValidTask:
    """A checked submission, ready for the store."""

    capability: str
    payload: bytes
    priority: int
    max_attempts: int
    required_labels: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    timeout_ms: int = 0
    trace_id: str = ""  # W3C traceparent its spans descend from (a workflow span); "" = current
    workflow_id: str = ""
    step_id: str = ""
    schedule_to_start_ms: int = 0
    heartbeat_timeout_ms: int = 0
    retry_initial_backoff_ms: int = 0
    retry_max_backoff_ms: int = 0
    progress_timeout_ms: int = 0
    fairness_key: str = ""
    fairness_weight: int = 1
    start_after_ms: int = 0
    start_at_ms: int = 0
    """A delayed start (epoch ms; 0 for none): the task waits SCHEDULED until then."""
    concurrency_key: str = ""
    concurrency_limit: int = 0
    concurrency_strategy: int = 0
    rate_limit_units: dict[str, int] = field(default_factory=dict)


_DURATIONS = (
    "schedule_to_start_timeout",
    "heartbeat_timeout",
    "retry_initial_backoff",
    "retry_max_backoff",
    "progress_timeout",
)
# Capabilities already found valid (a batch usually repeats one); bounded, cleared when full.
_GOOD_CAPABILITIES: set[str] = set()
_GOOD_CAPABILITIES_MAX = 1024


def validate_task(
    req: task_pb2.SubmitTaskRequest, settings: SubmissionSettings, where: str = ""
) -> ValidTask:
    """Check one SubmitTaskRequest; `where` prefixes field names (e.g. 'tasks[3].')."""
    capability = req.capability
    if capability not in _GOOD_CAPABILITIES:
        check_capability(capability, f"{where}capability")
        if len(_GOOD_CAPABILITIES) >= _GOOD_CAPABILITIES_MAX:
            _GOOD_CAPABILITIES.clear()
        _GOOD_CAPABILITIES.add(capability)
    payload = req.payload
    if len(payload) > settings.max_payload_bytes:
        raise ResourceExhausted(
            f"{where}payload is {len(payload)} bytes, over the limit of"
            f" {settings.max_payload_bytes}",
            reason="PAYLOAD_TOO_LARGE",
            field=f"{where}payload",
        )
    check_priority_and_attempts(req, where)
    priority, max_attempts = req.priority, req.max_attempts
    labels: dict[str, str] = {}
    if req.required_labels:
        check_labels(req.required_labels, f"{where}required_labels")
        labels = dict(req.required_labels)
    if len(req.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(
            f"{where}request_id is longer than {MAX_REQUEST_ID}", field=f"{where}request_id"
        )
    fairness_weight = check_fairness(req.fairness_key, req.fairness_weight, where)
    timeout_ms = attempt_timeout_ms(req, where)
    s2s, heartbeat, backoff, backoff_max, progress = (
        _positive_ms(req, name, where) for name in _DURATIONS
    )
    start_after_ms, start_at_ms = start_delay(req, where)
    ckey, climit, cstrategy = check_concurrency(req, where)
    units = check_rate_units(req.rate_limit_units, f"{where}rate_limit_units")
    return ValidTask(
        concurrency_key=ckey,
        concurrency_limit=climit,
        concurrency_strategy=cstrategy,
        rate_limit_units=units,
        capability=capability,
        payload=payload,
        priority=priority,
        max_attempts=max_attempts or settings.default_max_attempts,
        required_labels=labels,
        request_id=req.request_id,
        timeout_ms=timeout_ms,
        schedule_to_start_ms=s2s,
        heartbeat_timeout_ms=heartbeat,
        retry_initial_backoff_ms=backoff,
        retry_max_backoff_ms=backoff_max,
        progress_timeout_ms=progress,
        fairness_key=req.fairness_key or principal.current().tenant,
        fairness_weight=fairness_weight,
        start_after_ms=start_after_ms,
        start_at_ms=start_at_ms,
        trace_id=own_traceparent(req.traceparent, f"{where}traceparent"),
    )


TRACEPARENT_LENGTH = 55


def own_traceparent(traceparent: str, field_name: str) -> str:
    """The traceparent a task is stored with when its request names one: the current span's
    when that is in the same trace (the request came in its own trace, so the task descends
    from the submitting RPC's span, as without the field), else the one named."""
    traceparent = check_traceparent(traceparent, field_name)
    if traceparent:
        current = traceparent_of()
        if current and current[3:35] == traceparent[3:35]:
            return current
    return traceparent


def check_traceparent(traceparent: str, field_name: str) -> str:
    """A task's own traceparent ('' for none): a valid W3C version-00 one."""
    if traceparent and (
        len(traceparent) != TRACEPARENT_LENGTH
        or not traceparent.startswith("00-")
        or context_of(traceparent) is None
    ):
        raise InvalidArgument(
            f"{field_name} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)",
            field=field_name,
        )
    return traceparent


MAX_DURATION_MS = 30 * 24 * 3600 * 1000
# What a task and a workflow step both carry: priority, max_attempts, attempt_timeout.
TaskFields: TypeAlias = task_pb2.SubmitTaskRequest | workflow_pb2.WorkflowStepSpec


def check_priority_and_attempts(msg: TaskFields, where: str) -> None:
    """priority 0..MAX_PRIORITY and max_attempts 0..MAX_ATTEMPTS (0: the server default)."""
    if not 0 <= msg.priority <= MAX_PRIORITY:
        raise InvalidArgument(
            f"{where}priority must be 0..{MAX_PRIORITY}", field=f"{where}priority"
        )
    if not 0 <= msg.max_attempts <= MAX_ATTEMPTS:
        raise InvalidArgument(
            f"{where}max_attempts must be 0..{MAX_ATTEMPTS}", field=f"{where}max_attempts"
        )


def attempt_timeout_ms(msg: TaskFields, where: str) -> int:
    """attempt_timeout in milliseconds, 0 when unset; positive and at most 30 days if set."""
    return _positive_ms(msg, "attempt_timeout", where)


def start_delay(msg: TaskFields, where: str) -> tuple[int, int]:
    """(start_after ms, start_at epoch ms) of a task or step, 0 for unset (validation's
    check_start_delay: exclusive, bounded, a past start_at means now)."""
    after = msg.start_after.ToMilliseconds() if msg.HasField("start_after") else None
    at = ms_of(msg, "start_at")
    if at is None and msg.HasField("start_at"):
        raise InvalidArgument(
            f"{where}start_at is not a valid timestamp (nanos 0..999,999,999)",
            field=f"{where}start_at",
        )
    return check_start_delay(after, at, now_ms(), where)


def _positive_ms(msg: TaskFields, name: str, where: str) -> int:
    """An optional Duration field in milliseconds (0 when unset); must be positive and at most
    30 days if set (a Duration can say 10,000 years; a deadline that far is a mistake)."""
    if not msg.HasField(name):  # type: ignore[arg-type]
        return 0
    ms = int(getattr(msg, name).ToMilliseconds())
    if not 0 < ms <= MAX_DURATION_MS:
        raise InvalidArgument(
            f"{where}{name} must be positive and at most 30 days", field=f"{where}{name}"
        )
    return ms


def validate_batch(
    reqs: list[task_pb2.SubmitTaskRequest], settings: SubmissionSettings
) -> list[ValidTask]:
    """Check a batch: 1..max_batch tasks, each valid."""
    if not reqs:
        raise InvalidArgument("tasks must not be empty", field="tasks")
    if len(reqs) > settings.max_batch:
        raise ResourceExhausted(
            f"tasks has {len(reqs)} entries, over the limit of {settings.max_batch}",
            reason="BATCH_TOO_LARGE",
            field="tasks",
        )
    return [validate_task(r, settings, f"tasks[{i}].") for i, r in enumerate(reqs)]


def check_concurrency(msg: TaskFields, where: str) -> tuple[str, int, int]:
    """(key, limit, strategy): limit 1..MAX_CONCURRENCY_LIMIT (0 means 1), strategy a known
    ConcurrencyStrategy (UNSPECIFIED means QUEUE); no limit or strategy without a key."""
    key = msg.concurrency_key
    if not key:
        if msg.concurrency_limit or msg.concurrency_strategy:
            raise InvalidArgument(
                f"{where}concurrency_key is required with a concurrency limit or strategy",
                field=f"{where}concurrency_key",
            )
        return "", 0, 0
    check_name(key, f"{where}concurrency_key")
    limit = msg.concurrency_limit or 1
    if not 1 <= limit <= MAX_CONCURRENCY_LIMIT:
        raise InvalidArgument(
            f"{where}concurrency_limit must be 1..{MAX_CONCURRENCY_LIMIT}",
            field=f"{where}concurrency_limit",
        )
    strategy = int(msg.concurrency_strategy) or task_pb2.CONCURRENCY_STRATEGY_QUEUE
    if strategy not in task_pb2.ConcurrencyStrategy.values():
        raise InvalidArgument(
            f"{where}concurrency_strategy {strategy} is unknown",
            field=f"{where}concurrency_strategy",
        )
    return key, limit, strategy


def check_rate_units(units: Mapping[str, int], field: str) -> dict[str, int]:
    """Units per rate limit name: at most MAX_RATE_LIMITS_PER_TASK names, each 1..10^12 units
    (whether the limit exists and holds that many is checked by the store)."""
    if not units:
        return {}
    if len(units) > MAX_RATE_LIMITS_PER_TASK:
        raise InvalidArgument(
            f"{field} has more than {MAX_RATE_LIMITS_PER_TASK} entries", field=field
        )
    for name, n in units.items():
        check_name(name, f"{field}[{name[:70]}]")
        if not 1 <= n <= MAX_RATE_LIMIT_UNITS:
            raise InvalidArgument(
                f"{field}[{name}] must be 1..{MAX_RATE_LIMIT_UNITS}", field=f"{field}[{name}]"
            )
    return dict(units)
