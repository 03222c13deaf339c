"""Workflow validation and planning, pure logic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hivewire.core.workflow_file import WorkflowFileError, workflow_request
from hivewire.v1 import workflow_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.workflow_spec import find_cycle, validate_workflow
from hivewire_services.coordinator.workflows.inputs import InputLimits
from hivewire_services.coordinator.workflows.plan import StepRun, WorkflowRun, plan

SETTINGS = SubmissionSettings()
LIMITS = InputLimits(max_map=1000, max_payload=1 << 20, max_map_bytes=1 << 24)


def req(steps: list[dict[str, Any]], **kw: Any) -> workflow_pb2.SubmitWorkflowRequest:
    return workflow_request({"steps": steps, **kw})


def violations(
    steps: list[dict[str, Any]], settings: SubmissionSettings = SETTINGS
) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(req(steps), settings)
    return {v.field: v.description for v in err.value.violations}


def test_cycle_is_named_with_its_path() -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(
            req(
                [
                    {"id": "root", "capability": "x"},
                    {"id": "a", "capability": "x", "depends_on": ["root", "b"]},
                    {"id": "b", "capability": "x", "depends_on": ["a"]},
                ]
            ),
            SETTINGS,
        )
    assert err.value.reason == "WORKFLOW_HAS_CYCLE"
    assert "a -> b -> a" in err.value.message
    assert err.value.violations[0].field == "steps[1].depends_on"
    assert find_cycle({"s": ("s",)}) == ["s", "s"]
    assert find_cycle({"a": (), "b": ("a",)}) is None


def test_unknown_duplicate_and_bad_fields_are_all_reported() -> None:
    found = violations(
        [
            {"id": "a", "capability": "x", "depends_on": ["ghost"]},
            {"id": "a", "capability": "x"},
            {"id": "m", "capability": "x", "map_over": "nowhere"},
            {"id": "Bad Id", "capability": "x"},
            {"id": "p", "capability": "x", "payload": {"parents": 1}},
            {"id": "q", "capability": "x", "max_attempts": 1000},
        ]
    )
    assert set(found) == {
        "steps[0].depends_on",
        "steps[1].step_id",
        "steps[2].map_over",
        "steps[3].step_id",
        "steps[4].payload",
        "steps[5].max_attempts",
    }
    assert "ghost" in found["steps[0].depends_on"]
    assert "duplicate" in found["steps[1].step_id"]


def test_empty_oversized_and_non_object_payloads() -> None:
    assert "steps" in violations_of(workflow_pb2.SubmitWorkflowRequest())
    small = SubmissionSettings(workflow_max_steps=2)
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(req([{"id": f"s{i}", "capability": "x"} for i in range(3)]), small)
    assert err.value.reason == "WORKFLOW_TOO_LARGE"
    assert err.value.violations[0].field == "steps"
    raw = workflow_pb2.SubmitWorkflowRequest(
        steps=[workflow_pb2.WorkflowStepSpec(step_id="a", capability="x", payload=b"[1]")]
    )
    assert "steps[0].payload" in violations_of(raw)
    with pytest.raises(WorkflowFileError) as bad:
        workflow_request({"steps": [{"id": "a", "capability": "x", "colour": "red"}]})
    assert bad.value.field == "steps[0].colour"


def test_dependencies_are_counted_before_any_step_is_checked() -> None:
    """The dense DAG: 500 steps, each depending on every earlier one (124,750 edges), refused
    on `steps` for its size, whatever else is wrong with its steps."""
    dense = workflow_pb2.SubmitWorkflowRequest(
        steps=[
            workflow_pb2.WorkflowStepSpec(
                step_id=f"s{i}", capability="BAD!", depends_on=[f"s{j}" for j in range(i)]
            )
            for i in range(500)
        ]
    )
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(dense, SETTINGS)
    assert err.value.reason == "WORKFLOW_TOO_LARGE"
    assert [v.field for v in err.value.violations] == ["steps"]
    assert "124750 dependencies" in err.value.message
    chain = [{"id": "a", "capability": "x"}, {"id": "m", "capability": "x", "map_over": "a"}]
    validate_workflow(req(chain), SubmissionSettings(workflow_max_edges=1))
    with pytest.raises(InvalidArgument, match="over the limit of 0"):
        validate_workflow(req(chain), SubmissionSettings(workflow_max_edges=0))


def test_deep_payloads_and_long_timeouts_name_their_field() -> None:
    deep = b'{"a":' * 65 + b"1" + b"}" * 65
    spec = workflow_pb2.WorkflowStepSpec(step_id="a", capability="x", payload=deep)
    too_long = workflow_pb2.WorkflowStepSpec(step_id="b", capability="x")
    too_long.attempt_timeout.FromSeconds(31 * 24 * 3600)
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(workflow_pb2.SubmitWorkflowRequest(steps=[spec, too_long]), SETTINGS)
    by_field = {v.field: v.description for v in err.value.violations}
    assert "nested deeper than 64 levels" in by_field["steps[0].payload"]
    assert "at most 30 days" in by_field["steps[1].attempt_timeout"]


def violations_of(r: workflow_pb2.SubmitWorkflowRequest) -> set[str]:
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(r, SETTINGS)
    return {v.field for v in err.value.violations}


def run_of(
    steps: list[dict[str, Any]], states: dict[str, StepRun], policy: str = ""
) -> WorkflowRun:
    defn = validate_workflow(req(steps, failure_policy=policy), SETTINGS)
    return WorkflowRun(
        workflow_id="0" * 32,
        defn=defn,
        state=workflow_pb2.WORKFLOW_STATE_RUNNING,
        steps={s.step_id: states.get(s.step_id, StepRun()) for s in defn.steps},
    )


def test_plan_launches_ready_steps_with_parents_outputs() -> None:
    steps = [
        {"id": "a", "capability": "x"},
        {"id": "b", "capability": "x", "payload": {"k": 1}, "depends_on": ["a"]},
        {"id": "m", "capability": "x", "map_over": "a", "payload": {"k": 2}},
    ]
    fresh = plan(run_of(steps, {}), LIMITS)
    assert [launch.step.step_id for launch in fresh.launches] == ["a"]
    assert json.loads(fresh.launches[0].inputs[0]) == {"parents": {}}
    done = StepRun(state=workflow_pb2.STEP_STATE_SUCCEEDED, output=b'["p", "q"]')
    later = plan(run_of(steps, {"a": done}), LIMITS)
    by_id = {launch.step.step_id: launch for launch in later.launches}
    assert json.loads(by_id["b"].inputs[0]) == {"k": 1, "parents": {"a": ["p", "q"]}}
    assert [json.loads(i) for i in by_id["m"].inputs] == [
        {"k": 2, "item": "p", "index": 0, "parents": {}},
        {"k": 2, "item": "q", "index": 1, "parents": {}},
    ]
    too_many = plan(run_of(steps, {"a": done}), InputLimits(1, 1 << 20, 1 << 24))
    assert too_many.fails and "over the limit" in too_many.fails[0][1]


def test_plan_failure_policies() -> None:
    steps = [
        {"id": "a", "capability": "x"},
        {"id": "b", "capability": "x"},
        {"id": "c", "capability": "x", "depends_on": ["a"]},
    ]
    failed = StepRun(state=workflow_pb2.STEP_STATE_FAILED, error="boom", task_ids=["t1"])
    running = StepRun(state=workflow_pb2.STEP_STATE_RUNNING, task_ids=["t2"])
    fast = plan(run_of(steps, {"a": failed, "b": running}), LIMITS)
    assert fast.cancel_tasks == ["t2"]
    assert sorted(fast.cancels) == ["b", "c"]
    assert fast.finish == (workflow_pb2.WORKFLOW_STATE_FAILED, "step a FAILED: boom")
    cont = plan(run_of(steps, {"a": failed, "b": running}, "continue"), LIMITS)
    assert cont.skips == ["c"] and cont.finish is None and not cont.cancel_tasks
    ok = StepRun(state=workflow_pb2.STEP_STATE_SUCCEEDED)
    end = plan(
        run_of(
            steps, {"a": failed, "b": ok, "c": StepRun(workflow_pb2.STEP_STATE_SKIPPED)}, "continue"
        ),
        LIMITS,
    )
    assert end.finish is not None and end.finish[0] == workflow_pb2.WORKFLOW_STATE_FAILED
