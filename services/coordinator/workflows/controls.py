"""Requests that change a workflow from outside its tasks: a signal for a waiting step, a
retry from failure, a due timer. Checked here (domain errors), applied by one script each."""

from __future__ import annotations

from typing import Protocol

from hivewire.core.clock import now_ms
from hivewire.v1 import workflow_pb2
from hivewire_services.common import principal
from hivewire_services.common.errors import FailedPrecondition, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_capability, check_id
from hivewire_services.common.validation_json import parse_json_field
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.workflows.store import WorkflowStore
from hivewire_services.coordinator.workflows.wait_scripts import WaitScripts


class WorkflowEngine(Protocol):
    """What these requests use of the engine (engine.py)."""

    redis: Redis
    keys: Keys
    settings: CoordinatorSettings
    store: WorkflowStore
    waits: WaitScripts


def _state_name(enum: type, prefix: str, value: int) -> str:
    try:
        return str(enum.Name(value)).removeprefix(prefix)  # type: ignore[attr-defined]
    except ValueError:
        return str(value)


def _not_found(workflow_id: str) -> NotFound:
    return NotFound(f"workflow {workflow_id} not found", reason="WORKFLOW_NOT_FOUND")


async def signal_step(
    engine: WorkflowEngine, workflow_id: str, step_id: str, payload: bytes
) -> None:
    """Check the signal, then apply it (signal.lua); idempotent for a repeated payload."""
    check_id(workflow_id, "workflow_id")
    check_capability(step_id, "step_id")
    raw = payload if payload.strip() else b"null"
    parse_json_field(raw, "payload", engine.settings.max_payload_bytes)
    run = await engine.store.load(workflow_id)
    if run is None:
        raise _not_found(workflow_id)
    if step_id not in run.steps:
        raise NotFound(f"workflow {workflow_id} has no step {step_id!r}", reason="STEP_NOT_FOUND")
    if not run.defn.step(step_id).wait_for_signal:
        raise FailedPrecondition(
            f"step {step_id} does not wait for a signal", reason="STEP_NOT_SIGNALLABLE"
        )
    who = principal.current().name
    code, state = await engine.waits.signal(now_ms(), workflow_id, step_id, raw, who)
    if code == 0:
        raise _not_found(workflow_id)
    if code == -1:
        raise NotFound(f"workflow {workflow_id} has no step {step_id!r}", reason="STEP_NOT_FOUND")
    if code == -2:
        name = _state_name(workflow_pb2.WorkflowState, "WORKFLOW_STATE_", state)
        raise FailedPrecondition(
            f"workflow {workflow_id} is {name}, not RUNNING", reason="WORKFLOW_NOT_RUNNING"
        )
    if code == -3:
        name = _state_name(workflow_pb2.StepState, "STEP_STATE_", state)
        raise FailedPrecondition(
            f"step {step_id} is {name}, not AWAITING_SIGNAL", reason="STEP_NOT_AWAITING_SIGNAL"
        )


async def retry_workflow(engine: WorkflowEngine, workflow_id: str) -> None:
    """Reset the steps that did not succeed (retry.lua); FAILED or CANCELLED workflows only."""
    check_id(workflow_id, "workflow_id")
    before, _ = await engine.waits.retry(now_ms(), workflow_id)
    if before == 0:
        raise _not_found(workflow_id)
    if before not in (workflow_pb2.WORKFLOW_STATE_FAILED, workflow_pb2.WORKFLOW_STATE_CANCELLED):
        name = _state_name(workflow_pb2.WorkflowState, "WORKFLOW_STATE_", before)
        raise FailedPrecondition(
            f"workflow {workflow_id} is {name}: only a FAILED or CANCELLED workflow can be retried",
            reason="WORKFLOW_NOT_FAILED",
        )


async def fire_timer(engine: WorkflowEngine, workflow_id: str, step_id: str) -> None:
    """Apply a due timer (fire.lua) with the step's timeout outcome from its definition."""
    run = await engine.store.load(workflow_id)
    if run is None or step_id not in run.steps:
        # The workflow expired (or the member is malformed): drop the timer.
        await engine.redis.zrem(engine.keys.workflow_timers, f"{workflow_id}/{step_id}")
        return
    step = run.defn.step(step_id)
    await engine.waits.fire(
        now_ms(),
        workflow_id,
        step_id,
        step.timeout_outcome,
        step.timeout_output,
        step.signal_timeout_ms,
    )
