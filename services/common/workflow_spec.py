"""Validation of SubmitWorkflow requests (gateway edge and coordinator): fields, ids, the DAG."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hivewire.v1 import workflow_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import FieldViolation, HivewireError, InvalidArgument
from hivewire_services.common.submission import attempt_timeout_ms, check_priority_and_attempts
from hivewire_services.common.validation import MAX_REQUEST_ID, check_capability, check_labels
from hivewire_services.common.validation_json import parse_json_field
from hivewire_services.common.workflow_waits import check_wait_fields

MAX_NAME = 128
# Field violations one error carries at most (the message names the first five).
MAX_VIOLATIONS = 100
# Keys the engine adds to a step's input; a step's own payload may not use them.
PARENTS_KEY = "parents"
ITEM_KEY = "item"
INDEX_KEY = "index"


@dataclass(frozen=True)
class StepDef:
    """One checked step. `depends_on` includes `map_over`, in declaration order."""

    step_id: str
    capability: str
    payload: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    required_labels: dict[str, str] = field(default_factory=dict)
    max_attempts: int = 0
    timeout_ms: int = 0
    map_over: str = ""
    priority: int = 0
    # A signal step (no task): waits for SignalWorkflow; optional timeout and its outcome.
    wait_for_signal: bool = False
    signal_timeout_ms: int = 0
    timeout_outcome: int = 0
    timeout_output: str = ""
    # A sleep step (no task): succeeds this long after its dependencies.
    sleep_ms: int = 0

    @property
    def runs_task(self) -> bool:
        """False for signal and sleep steps, which the engine resolves itself."""
        return not (self.wait_for_signal or self.sleep_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            **self._task_json(),
            "wait_for_signal": self.wait_for_signal,
            "signal_timeout_ms": self.signal_timeout_ms,
            "timeout_outcome": self.timeout_outcome,
            "timeout_output": self.timeout_output,
            "sleep_ms": self.sleep_ms,
        }

    def _task_json(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "capability": self.capability,
            "payload": self.payload,
            "depends_on": list(self.depends_on),
            "required_labels": self.required_labels,
            "max_attempts": self.max_attempts,
            "timeout_ms": self.timeout_ms,
            "map_over": self.map_over,
            "priority": self.priority,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> StepDef:
        return StepDef(
            step_id=d["step_id"],
            capability=d["capability"],
            payload=d["payload"],
            depends_on=tuple(d["depends_on"]),
            required_labels=d["required_labels"],
            max_attempts=d["max_attempts"],
            timeout_ms=d["timeout_ms"],
            map_over=d["map_over"],
            priority=d["priority"],
            wait_for_signal=d.get("wait_for_signal", False),
            signal_timeout_ms=d.get("signal_timeout_ms", 0),
            timeout_outcome=d.get("timeout_outcome", 0),
            timeout_output=d.get("timeout_output", ""),
            sleep_ms=d.get("sleep_ms", 0),
        )


@dataclass(frozen=True)
class WorkflowDef:
    """A checked workflow, steps in submission order."""

    name: str
    steps: tuple[StepDef, ...]
    failure_policy: int
    request_id: str = ""
    command: str = ""

    def step(self, step_id: str) -> StepDef:
        for s in self.steps:
            if s.step_id == step_id:
                return s
        raise KeyError(step_id)

    def children(self, step_id: str) -> list[str]:
        return [s.step_id for s in self.steps if step_id in s.depends_on]


def steps_to_json(steps: tuple[StepDef, ...]) -> str:
    return json.dumps([s.to_json() for s in steps], separators=(",", ":"))


def steps_from_json(raw: str | bytes) -> tuple[StepDef, ...]:
    return tuple(StepDef.from_json(d) for d in json.loads(raw))


def find_cycle(deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as a path [a, b, ..., a], or None. Iterative DFS, declaration order."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    for root in deps:
        if color[root] != white:
            continue
        path: list[str] = [root]
        iters = [iter(deps[root])]
        color[root] = grey
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                color[path.pop()] = black
                iters.pop()
                continue
            if nxt not in color:
                continue
            if color[nxt] == grey:
                return [*path[path.index(nxt) :], nxt]
            if color[nxt] == white:
                color[nxt] = grey
                path.append(nxt)
                iters.append(iter(deps[nxt]))
    return None


def _payload(raw: bytes, where: str, is_map: bool, settings: SubmissionSettings) -> dict[str, Any]:
    if not raw.strip() and len(raw) <= settings.max_payload_bytes:
        return {}
    value = parse_json_field(raw, f"{where}payload", settings.max_payload_bytes)
    if not isinstance(value, dict):
        raise InvalidArgument(
            f"{where}payload must be a JSON object (a step's input is an object)",
            field=f"{where}payload",
        )
    reserved = [PARENTS_KEY] + ([ITEM_KEY, INDEX_KEY] if is_map else [])
    for key in reserved:
        if key in value:
            raise InvalidArgument(
                f"{where}payload may not set {key!r}: the engine fills it in",
                field=f"{where}payload",
            )
    return value


def _step(
    spec: workflow_pb2.WorkflowStepSpec, i: int, settings: SubmissionSettings
) -> tuple[StepDef | None, list[FieldViolation]]:
    where = f"steps[{i}]."
    bad: list[FieldViolation] = []
    step_def: StepDef | None = None
    try:
        check_capability(spec.step_id, f"{where}step_id")
        waits = check_wait_fields(spec, where, settings)
        if waits is None:
            check_capability(spec.capability, f"{where}capability")
        payload = _payload(spec.payload, where, bool(spec.map_over), settings)
        check_priority_and_attempts(spec, where)
        check_labels(spec.required_labels, f"{where}required_labels")
        timeout_ms = attempt_timeout_ms(spec, where)
        deps = list(dict.fromkeys(spec.depends_on))
        if spec.map_over and spec.map_over not in deps:
            deps.insert(0, spec.map_over)
        step_def = StepDef(
            step_id=spec.step_id,
            capability=spec.capability,
            payload=payload,
            depends_on=tuple(deps),
            required_labels=dict(spec.required_labels),
            max_attempts=spec.max_attempts or settings.default_max_attempts,
            timeout_ms=timeout_ms,
            map_over=spec.map_over,
            priority=spec.priority,
            **(waits or {}),
        )
    except HivewireError as exc:
        bad.extend(exc.violations or [FieldViolation(where.rstrip("."), exc.message)])
    return step_def, bad


def check_workflow_size(
    req: workflow_pb2.SubmitWorkflowRequest, settings: SubmissionSettings
) -> None:
    """Steps and dependency edges within their limits: checked first, before any per-step work,
    so an oversized graph costs no more than counting it."""
    if len(req.steps) > settings.workflow_max_steps:
        raise InvalidArgument(
            f"workflow has {len(req.steps)} steps, over the limit of {settings.workflow_max_steps}",
            reason="WORKFLOW_TOO_LARGE",
            field="steps",
        )
    edges = sum(len(s.depends_on) + bool(s.map_over) for s in req.steps)
    if edges > settings.workflow_max_edges:
        raise InvalidArgument(
            f"workflow has {edges} dependencies (depends_on and map_over entries), over the"
            f" limit of {settings.workflow_max_edges}",
            reason="WORKFLOW_TOO_LARGE",
            field="steps",
        )


def validate_workflow(
    req: workflow_pb2.SubmitWorkflowRequest, settings: SubmissionSettings
) -> WorkflowDef:
    """Check everything before anything is stored; every problem found becomes a violation."""
    bad: list[FieldViolation] = []
    if len(req.name) > MAX_NAME:
        bad.append(FieldViolation("name", f"name is longer than {MAX_NAME} characters"))
    if len(req.request_id) > MAX_REQUEST_ID:
        bad.append(FieldViolation("request_id", f"request_id is longer than {MAX_REQUEST_ID}"))
    if req.failure_policy not in workflow_pb2.FailurePolicy.values():
        bad.append(FieldViolation("failure_policy", "failure_policy is not a known FailurePolicy"))
    if not req.steps:
        bad.append(FieldViolation("steps", "a workflow needs at least one step"))
    check_workflow_size(req, settings)
    steps: list[StepDef] = []
    index: dict[str, int] = {}
    for i, spec in enumerate(req.steps):
        step_def, problems = _step(spec, i, settings)
        bad.extend(problems)
        if step_def is None:
            continue
        if step_def.step_id in index:
            first = index[step_def.step_id]
            bad.append(
                FieldViolation(
                    f"steps[{i}].step_id",
                    f"duplicate step id {step_def.step_id!r} (also steps[{first}])",
                )
            )
            continue
        index[step_def.step_id] = i
        steps.append(step_def)
    for s in steps:
        i = index[s.step_id]
        for dep in s.depends_on:
            if dep == s.map_over and dep not in index:
                bad.append(FieldViolation(f"steps[{i}].map_over", f"unknown step {dep!r}"))
            elif dep not in index:
                bad.append(FieldViolation(f"steps[{i}].depends_on", f"unknown step {dep!r}"))
    if bad:
        raise InvalidArgument(
            "invalid workflow: " + "; ".join(f"{v.field}: {v.description}" for v in bad[:5]),
            reason="WORKFLOW_INVALID",
            violations=bad[:MAX_VIOLATIONS],
        )
    cycle = find_cycle({s.step_id: s.depends_on for s in steps})
    if cycle:
        path = " -> ".join(cycle)
        raise InvalidArgument(
            f"workflow has a dependency cycle: {path}",
            reason="WORKFLOW_HAS_CYCLE",
            field=f"steps[{index[cycle[0]]}].depends_on",
        )
    return WorkflowDef(
        name=req.name,
        steps=tuple(steps),
        failure_policy=req.failure_policy or workflow_pb2.FAILURE_POLICY_FAIL_FAST,
        request_id=req.request_id,
        command=req.command,
    )
