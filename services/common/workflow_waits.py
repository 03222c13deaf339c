"""Validation of the step fields that make a step wait instead of running a task: a signal
step (`wait_for_signal`, with an optional `signal_timeout` and its outcome) or a sleep step."""

from __future__ import annotations

from typing import Any

from hivewire.v1 import workflow_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.submission import MAX_DURATION_MS
from hivewire_services.common.validation_json import parse_json_field

OUTCOMES = frozenset(workflow_pb2.SignalTimeoutOutcome.values())


def _duration_ms(spec: workflow_pb2.WorkflowStepSpec, name: str, where: str) -> int:
    """An optional Duration in ms (0 when unset); positive and at most 30 days when set."""
    if not spec.HasField(name):  # type: ignore[arg-type]
        return 0
    ms = int(getattr(spec, name).ToMilliseconds())
    if not 0 < ms <= MAX_DURATION_MS:
        raise InvalidArgument(
            f"{where}{name} must be positive and at most 30 days", field=f"{where}{name}"
        )
    return ms


def check_wait_fields(
    spec: workflow_pb2.WorkflowStepSpec, where: str, settings: SubmissionSettings
) -> dict[str, Any] | None:
    """The StepDef fields of a signal or sleep step, or None for a step that runs a task
    (which may not set any of them)."""
    sleep_ms = _duration_ms(spec, "sleep", where)
    timeout_ms = _duration_ms(spec, "signal_timeout", where)
    signal = spec.wait_for_signal
    if not signal:
        for name in ("signal_timeout", "timeout_output"):
            if timeout_ms if name == "signal_timeout" else spec.timeout_output:
                raise InvalidArgument(
                    f"{where}{name} needs wait_for_signal", field=f"{where}{name}"
                )
        if spec.timeout_outcome:
            raise InvalidArgument(
                f"{where}timeout_outcome needs wait_for_signal", field=f"{where}timeout_outcome"
            )
        if not sleep_ms:
            return None
    if signal and sleep_ms:
        raise InvalidArgument(
            f"{where}sleep: a step either waits for a signal or sleeps", field=f"{where}sleep"
        )
    for name in ("capability", "map_over"):
        if getattr(spec, name):
            kind = "signal" if signal else "sleep"
            raise InvalidArgument(
                f"{where}{name} must be empty: a {kind} step runs no task", field=f"{where}{name}"
            )
    if spec.timeout_outcome not in OUTCOMES:
        raise InvalidArgument(
            f"{where}timeout_outcome is not a known SignalTimeoutOutcome",
            field=f"{where}timeout_outcome",
        )
    succeed = spec.timeout_outcome == workflow_pb2.SIGNAL_TIMEOUT_OUTCOME_SUCCEED
    if spec.timeout_output and not succeed:
        raise InvalidArgument(
            f"{where}timeout_output needs timeout_outcome SUCCEED", field=f"{where}timeout_output"
        )
    if spec.timeout_outcome and not timeout_ms:
        raise InvalidArgument(
            f"{where}timeout_outcome needs signal_timeout", field=f"{where}timeout_outcome"
        )
    output = ""
    if spec.timeout_output.strip():
        parse_json_field(spec.timeout_output, f"{where}timeout_output", settings.max_payload_bytes)
        output = spec.timeout_output.decode()
    return {
        "wait_for_signal": signal,
        "signal_timeout_ms": timeout_ms,
        "timeout_outcome": spec.timeout_outcome or workflow_pb2.SIGNAL_TIMEOUT_OUTCOME_FAIL,
        "timeout_output": output,
        "sleep_ms": sleep_ms,
    }
