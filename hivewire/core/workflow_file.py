"""Workflow files (YAML) to SubmitWorkflowRequest; shared by the CLI and the gateway's commands.

name: my-pipeline
failure_policy: fail_fast        # or: continue
steps:
  - id: split                    # step id (also accepted: step_id)
    capability: chunk
    payload: {text: "some text", chunks: 4}
  - id: count
    capability: wordcount
    map_over: split              # one task per element of split's JSON array output
  - id: merge
    capability: merge-counts
    depends_on: [count]          # a list, or one id as a string
    max_attempts: 3              # optional, like priority, timeout (s), required_labels
  - id: approve                  # a signal step: no task; waits for `hivewire workflow signal`
    wait_for_signal: true
    depends_on: [merge]
    signal_timeout: 1h           # optional; then timeout_outcome: fail (default) or succeed
    timeout_outcome: succeed
    timeout_output: {approved: false}   # the output when it times out with succeed
  - id: cool-down                # a sleep step: no task; succeeds 30s after its dependencies
    sleep: 30s
    depends_on: [approve]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from hivewire.core.durations import parse_seconds
from hivewire.v1 import workflow_pb2

POLICIES = {
    "": workflow_pb2.FAILURE_POLICY_UNSPECIFIED,
    "fail_fast": workflow_pb2.FAILURE_POLICY_FAIL_FAST,
    "fail-fast": workflow_pb2.FAILURE_POLICY_FAIL_FAST,
    "continue": workflow_pb2.FAILURE_POLICY_CONTINUE,
}
STEP_KEYS = frozenset(
    {
        "id",
        "step_id",
        "capability",
        "payload",
        "depends_on",
        "map_over",
        "required_labels",
        "max_attempts",
        "timeout",
        "priority",
        "wait_for_signal",
        "signal_timeout",
        "timeout_outcome",
        "timeout_output",
        "sleep",
    }
)
OUTCOMES = {
    "fail": workflow_pb2.SIGNAL_TIMEOUT_OUTCOME_FAIL,
    "succeed": workflow_pb2.SIGNAL_TIMEOUT_OUTCOME_SUCCEED,
}


class WorkflowFileError(ValueError):
    """A workflow file that cannot be turned into a request; `field` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def load_yaml(text: str, what: str = "file") -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkflowFileError(what, f"not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise WorkflowFileError(what, "must be a YAML mapping")
    return doc


def policy_value(raw: object, field: str = "failure_policy") -> int:
    key = str(raw or "").strip().lower()
    if key not in POLICIES:
        raise WorkflowFileError(field, f"{raw!r} is not fail_fast or continue")
    return POLICIES[key]


def _int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkflowFileError(field, f"must be a whole number, not {value!r}")
    return value


def step_spec(raw: object, i: int) -> workflow_pb2.WorkflowStepSpec:
    """One YAML step as a WorkflowStepSpec (the server checks names, ids and the DAG)."""
    where = f"steps[{i}]"
    if not isinstance(raw, Mapping):
        raise WorkflowFileError(where, "must be a mapping")
    unknown = sorted(set(raw) - STEP_KEYS)
    if unknown:
        raise WorkflowFileError(f"{where}.{unknown[0]}", "unknown key")
    spec = workflow_pb2.WorkflowStepSpec(
        step_id=str(raw.get("id", raw.get("step_id", ""))),
        capability=str(raw.get("capability", "")),
        map_over=str(raw.get("map_over", "") or ""),
    )
    payload = raw.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise WorkflowFileError(f"{where}.payload", "must be a mapping (a JSON object)")
    spec.payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    deps = raw.get("depends_on", [])
    if isinstance(deps, str):
        deps = [deps]
    if not isinstance(deps, list):
        raise WorkflowFileError(f"{where}.depends_on", "must be a list of step ids")
    spec.depends_on.extend(str(d) for d in deps)
    labels = raw.get("required_labels", {}) or {}
    if not isinstance(labels, Mapping):
        raise WorkflowFileError(f"{where}.required_labels", "must be a mapping")
    spec.required_labels.update({str(k): str(v) for k, v in labels.items()})
    if "max_attempts" in raw:
        spec.max_attempts = _int(raw["max_attempts"], f"{where}.max_attempts")
    if "priority" in raw:
        spec.priority = _int(raw["priority"], f"{where}.priority")
    if raw.get("timeout") is not None:
        timeout = raw["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise WorkflowFileError(f"{where}.timeout", "must be a positive number of seconds")
        spec.attempt_timeout.FromNanoseconds(int(timeout * 1e9))
    _wait_fields(raw, spec, where)
    return spec


def _duration(raw: Mapping[str, Any], key: str, where: str) -> int:
    """Nanoseconds of an optional duration key (`30s`, `5m`, a number of seconds); 0 if unset."""
    if raw.get(key) is None:
        return 0
    try:
        return int(parse_seconds(raw[key]) * 1e9)
    except ValueError as exc:
        raise WorkflowFileError(f"{where}.{key}", str(exc)) from None


def _wait_fields(raw: Mapping[str, Any], spec: workflow_pb2.WorkflowStepSpec, where: str) -> None:
    """Signal steps (wait_for_signal, signal_timeout, timeout_outcome, timeout_output) and sleep
    steps (sleep); the server checks how they combine."""
    signal = raw.get("wait_for_signal", False)
    if not isinstance(signal, bool):
        raise WorkflowFileError(f"{where}.wait_for_signal", "must be true or false")
    spec.wait_for_signal = signal
    if ns := _duration(raw, "signal_timeout", where):
        spec.signal_timeout.FromNanoseconds(ns)
    if ns := _duration(raw, "sleep", where):
        spec.sleep.FromNanoseconds(ns)
    outcome = str(raw.get("timeout_outcome", "") or "").strip().lower()
    if outcome:
        if outcome not in OUTCOMES:
            raise WorkflowFileError(
                f"{where}.timeout_outcome", f"{outcome!r} is not fail or succeed"
            )
        spec.timeout_outcome = OUTCOMES[outcome]
    if "timeout_output" in raw:
        text = json.dumps(raw["timeout_output"], separators=(",", ":"), ensure_ascii=False)
        spec.timeout_output = text.encode()


def workflow_request(
    doc: Mapping[str, Any], request_id: str = ""
) -> workflow_pb2.SubmitWorkflowRequest:
    """A parsed workflow document as a SubmitWorkflowRequest."""
    steps = doc.get("steps")
    if not isinstance(steps, list) or not steps:
        raise WorkflowFileError("steps", "must be a non-empty list")
    return workflow_pb2.SubmitWorkflowRequest(
        name=str(doc.get("name", "") or ""),
        steps=[step_spec(s, i) for i, s in enumerate(steps)],
        failure_policy=policy_value(doc.get("failure_policy")),  # type: ignore[arg-type]
        request_id=request_id,
    )
