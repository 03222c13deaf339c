"""Workflow decisions, pure: given a workflow's stored state, what to launch, skip, cancel or end.

The engine reads the state from Redis, asks `plan()`, and applies the plan with one Lua call
(advance.lua) that re-checks every decision, so a stale or repeated plan is harmless.

A step's input (the task payload) is its own payload object plus the key "parents", mapping
each dependency's step id to that step's output (decoded JSON; text when it is not JSON):

    {"...own fields...": ..., "parents": {"split": [...], "fetch": {...}}}

A map step runs one task per element of its `map_over` step's JSON array output; each task
gets {"...own fields...", "item": <element>, "index": <i>, "parents": {<other dependencies>}}
and the map step's output is the JSON array of the element outputs, in element order.
Inputs are built, within their limits, in inputs.py.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from hivewire.v1 import workflow_pb2
from hivewire_services.common.workflow_spec import StepDef, WorkflowDef
from hivewire_services.coordinator.workflows.inputs import InputError, InputLimits, step_inputs

WAITING = workflow_pb2.STEP_STATE_WAITING
RUNNING = workflow_pb2.STEP_STATE_RUNNING
SUCCEEDED = workflow_pb2.STEP_STATE_SUCCEEDED
FAILED = workflow_pb2.STEP_STATE_FAILED
CANCELLED = workflow_pb2.STEP_STATE_CANCELLED
SKIPPED = workflow_pb2.STEP_STATE_SKIPPED
AWAITING_SIGNAL = workflow_pb2.STEP_STATE_AWAITING_SIGNAL
SLEEPING = workflow_pb2.STEP_STATE_SLEEPING
NOT_SUCCEEDED = frozenset({FAILED, CANCELLED, SKIPPED})
LIVE = frozenset({WAITING, RUNNING, AWAITING_SIGNAL, SLEEPING})


@dataclass
class StepRun:
    """Stored state of one step."""

    state: int = WAITING
    task_ids: list[str] = field(default_factory=list)
    output: bytes = b""
    error: str = ""
    agent_id: str = ""
    attempt: int = 0
    start_ms: int = 0
    end_ms: int = 0
    map_total: int = -1
    map_done: int = 0
    wake_ms: int = 0
    signalled_by: str = ""
    retries: int = 0


@dataclass
class WorkflowRun:
    """Stored state of a workflow: its definition, its steps, and which tasks were recorded."""

    workflow_id: str
    defn: WorkflowDef
    state: int
    steps: dict[str, StepRun]
    done: dict[str, int] = field(default_factory=dict)
    cancel_requested: bool = False
    create_ms: int = 0
    end_ms: int = 0
    error: str = ""
    seq: int = 0
    traceparent: str = ""
    retry_count: int = 0
    tenant: str = ""  # as stored: '' for the default tenant

    def live_tasks(self) -> list[str]:
        """Tasks of RUNNING steps whose outcome is not recorded yet."""
        return [
            tid
            for s in self.steps.values()
            if s.state == RUNNING
            for tid in s.task_ids
            if tid not in self.done
        ]


@dataclass
class Launch:
    step: StepDef
    inputs: list[bytes]


@dataclass
class Park:
    """A signal or sleep step whose dependencies succeeded: it waits (no task), until
    `wait_ms` from now when positive (a signal timeout or the sleep)."""

    step_id: str
    state: int
    wait_ms: int


@dataclass
class Plan:
    launches: list[Launch] = field(default_factory=list)
    parks: list[Park] = field(default_factory=list)
    fails: list[tuple[str, str]] = field(default_factory=list)
    skips: list[str] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)
    cancel_tasks: list[str] = field(default_factory=list)
    finish: tuple[int, str] | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.launches or self.parks or self.fails or self.skips or self.cancels or self.finish
        )


def topo_order(defn: WorkflowDef) -> list[StepDef]:
    """Steps with every dependency before its dependents, else in declaration order (the DAG
    was checked acyclic). Linear in steps and dependencies (Kahn's algorithm, a heap of
    declaration indices)."""
    steps = defn.steps
    index = {s.step_id: i for i, s in enumerate(steps)}
    waiting = [len(s.depends_on) for s in steps]
    children: list[list[int]] = [[] for _ in steps]
    for i, s in enumerate(steps):
        for d in s.depends_on:
            children[index[d]].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    heapq.heapify(ready)
    out: list[StepDef] = []
    while ready:
        i = heapq.heappop(ready)
        out.append(steps[i])
        for c in children[i]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, c)
    return out


def _state_name(state: int) -> str:
    return workflow_pb2.StepState.Name(state).removeprefix("STEP_STATE_")  # type: ignore[arg-type]


def _park(step: StepDef) -> Park:
    if step.wait_for_signal:
        return Park(step.step_id, AWAITING_SIGNAL, step.signal_timeout_ms)
    return Park(step.step_id, SLEEPING, step.sleep_ms)


def plan(run: WorkflowRun, limits: InputLimits) -> Plan:
    """What to do next. Empty when nothing can change until a task finishes."""
    out = Plan()
    if run.state != workflow_pb2.WORKFLOW_STATE_RUNNING:
        return out
    live_steps = [sid for sid, s in run.steps.items() if s.state in LIVE]
    if run.cancel_requested:
        out.cancel_tasks = run.live_tasks()
        out.cancels = live_steps
        out.finish = (workflow_pb2.WORKFLOW_STATE_CANCELLED, "cancelled by request")
        return out
    bad = [sid for sid, s in run.steps.items() if s.state in (FAILED, CANCELLED)]
    fail_fast = run.defn.failure_policy != workflow_pb2.FAILURE_POLICY_CONTINUE
    if bad and fail_fast:
        first = run.steps[bad[0]]
        out.cancel_tasks = run.live_tasks()
        out.cancels = live_steps
        why = f"step {bad[0]} {_state_name(first.state)}: {first.error}".rstrip(": ")
        out.finish = (workflow_pb2.WORKFLOW_STATE_FAILED, why)
        return out
    states = {sid: s.state for sid, s in run.steps.items()}
    outputs = {sid: s.output for sid, s in run.steps.items()}
    for step in topo_order(run.defn):
        if states[step.step_id] != WAITING:
            continue
        deps = [states[d] for d in step.depends_on]
        if any(d in NOT_SUCCEEDED for d in deps):
            out.skips.append(step.step_id)
            states[step.step_id] = SKIPPED
        elif all(d == SUCCEEDED for d in deps) and not step.runs_task:
            out.parks.append(_park(step))
            states[step.step_id] = out.parks[-1].state
        elif all(d == SUCCEEDED for d in deps):
            try:
                inputs = step_inputs(step, outputs, limits)
            except InputError as exc:
                out.fails.append((step.step_id, str(exc)))
                states[step.step_id] = FAILED
            else:
                out.launches.append(Launch(step, inputs))
                states[step.step_id] = RUNNING
    if out.launches or out.parks or out.fails or any(s in LIVE for s in states.values()):
        return out
    not_ok = [sid for sid, s in states.items() if s != SUCCEEDED]
    if not not_ok:
        out.finish = (workflow_pb2.WORKFLOW_STATE_SUCCEEDED, "")
    else:
        detail = ", ".join(f"{sid} {_state_name(states[sid])}" for sid in not_ok[:10])
        out.finish = (workflow_pb2.WORKFLOW_STATE_FAILED, f"steps did not succeed: {detail}")
    return out
