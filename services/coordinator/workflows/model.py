"""Conversions between workflow hashes in Redis and WorkflowRun / hivewire.v1.Workflow.

Hash fields: name, state, policy, command, request_id, steps (definition JSON), create_ms,
end_ms, seq, cancel, error, traceparent (the workflow span every step task descends from), tenant,
retries (RetryWorkflow calls); per step `st:`, `tk:`, `ag:`, `at:`, `t0:`, `t1:`, `er:`, `mt:`,
`md:`, `o:`, `wk:` (wake / signal timeout ms), `sb:` (who signalled), `rt:` (retries) + step id
(`mo:<step>:<i>` holds map element outputs until the map completes); per task `x:<task>` =
"<step>,<index>" and `d:<task>` = its recorded terminal state.
"""

from __future__ import annotations

from hivewire.core.clock import set_ms
from hivewire.core.tracing import trace_id_of
from hivewire.v1 import workflow_pb2
from hivewire_services.common.tenancy import tenant_of
from hivewire_services.common.workflow_spec import WorkflowDef, steps_from_json
from hivewire_services.coordinator.workflows.plan import StepRun, WorkflowRun

_STEP_FIELDS = {
    "st": ("state", int),
    "ag": ("agent_id", str),
    "at": ("attempt", int),
    "t0": ("start_ms", int),
    "t1": ("end_ms", int),
    "er": ("error", str),
    "mt": ("map_total", int),
    "md": ("map_done", int),
    "wk": ("wake_ms", int),
    "sb": ("signalled_by", str),
    "rt": ("retries", int),
}


def run_from_hash(workflow_id: str, raw: dict[bytes, bytes]) -> WorkflowRun | None:
    """A WorkflowRun from HGETALL, or None when the hash is missing or incomplete."""
    if b"steps" not in raw:
        return None
    meta = {k.decode(): v for k, v in raw.items() if b":" not in k}
    steps_def = steps_from_json(meta["steps"])
    defn = WorkflowDef(
        name=meta.get("name", b"").decode(),
        steps=steps_def,
        failure_policy=int(meta.get("policy", b"0") or 0),
        request_id=meta.get("request_id", b"").decode(),
        command=meta.get("command", b"").decode(),
    )
    steps = {s.step_id: StepRun() for s in steps_def}
    done: dict[str, int] = {}
    for key, value in raw.items():
        kind, sep, rest = key.decode().partition(":")
        if not sep:
            continue
        if kind == "d":
            done[rest] = int(value)
            continue
        if kind == "x" or kind == "mo":
            continue
        step = steps.get(rest)
        if step is None:
            continue
        if kind == "tk":
            step.task_ids = [t for t in value.decode().split(",") if t]
        elif kind == "o":
            step.output = value
        elif kind in _STEP_FIELDS:
            name, cast = _STEP_FIELDS[kind]
            text = value.decode()
            setattr(step, name, cast(text) if text or cast is str else 0)
    return WorkflowRun(
        workflow_id=workflow_id,
        defn=defn,
        state=int(meta.get("state", b"0")),
        steps=steps,
        done=done,
        cancel_requested=meta.get("cancel") == b"1",
        create_ms=int(meta.get("create_ms", b"0") or 0),
        end_ms=int(meta.get("end_ms", b"0") or 0),
        error=meta.get("error", b"").decode(),
        seq=int(meta.get("seq", b"0") or 0),
        traceparent=meta.get("traceparent", b"").decode(),
        retry_count=int(meta.get("retries", b"0") or 0),
        tenant=meta.get("tenant", b"").decode(),
    )


def workflow_to_proto(run: WorkflowRun) -> workflow_pb2.Workflow:
    """The public view: every step with its state, tasks, agent, attempt, output and timings."""
    wf = workflow_pb2.Workflow(
        workflow_id=run.workflow_id,
        name=run.defn.name,
        state=run.state,  # type: ignore[arg-type]
        failure_policy=run.defn.failure_policy,  # type: ignore[arg-type]
        command=run.defn.command,
        request_id=run.defn.request_id,
        trace_id=trace_id_of(run.traceparent),
        retry_count=run.retry_count,
        tenant=tenant_of(run.tenant),
    )
    set_ms(wf, "create_time", run.create_ms)
    set_ms(wf, "end_time", run.end_ms)
    for d in run.defn.steps:
        s = run.steps[d.step_id]
        step = wf.steps.add(
            step_id=d.step_id,
            capability=d.capability,
            depends_on=list(d.depends_on),
            state=s.state,
            task_ids=s.task_ids,
            agent_id=s.agent_id,
            attempt=s.attempt,
            output=s.output,
            error=s.error,
            map_over=d.map_over,
        )
        if d.map_over and s.map_total >= 0:
            step.map_total = s.map_total
            step.map_done = s.map_done
        step.wait_for_signal = d.wait_for_signal
        step.signalled_by = s.signalled_by
        step.retries = s.retries
        if d.sleep_ms:
            step.sleep.FromMilliseconds(d.sleep_ms)
        set_ms(step, "wake_time", s.wake_ms)
        set_ms(step, "start_time", s.start_ms)
        set_ms(step, "end_time", s.end_ms)
    return wf
