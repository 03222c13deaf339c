"""Signal and sleep steps: the file format, validation and planning, pure logic."""

from __future__ import annotations

from typing import Any

import pytest

from hivewire.core.durations import parse_seconds
from hivewire.core.workflow_file import WorkflowFileError, workflow_request
from hivewire.v1 import workflow_pb2
from hivewire_services.common.config import SubmissionSettings
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.workflow_spec import steps_from_json, steps_to_json, validate_workflow
from hivewire_services.coordinator.workflows.inputs import InputLimits
from hivewire_services.coordinator.workflows.plan import StepRun, WorkflowRun, plan

SETTINGS = SubmissionSettings()
LIMITS = InputLimits(max_map=1000, max_payload=1 << 20, max_map_bytes=1 << 24)


def req(steps: list[dict[str, Any]]) -> workflow_pb2.SubmitWorkflowRequest:
    return workflow_request({"steps": steps})


def rejected_field(steps: list[dict[str, Any]]) -> str:
    with pytest.raises(InvalidArgument) as err:
        validate_workflow(req(steps), SETTINGS)
    return err.value.violations[0].field


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), ("2d", 172800.0), (3, 3.0)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "soon", "5x", True, -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_seconds(text)


def test_file_keys_become_spec_fields() -> None:
    r = req(
        [
            {
                "id": "approve",
                "wait_for_signal": True,
                "signal_timeout": "1h",
                "timeout_outcome": "succeed",
                "timeout_output": {"approved": False},
            },
            {"id": "nap", "sleep": "30s", "depends_on": ["approve"]},
        ]
    )
    approve, nap = r.steps
    assert approve.wait_for_signal and approve.signal_timeout.ToSeconds() == 3600
    assert approve.timeout_outcome == workflow_pb2.SIGNAL_TIMEOUT_OUTCOME_SUCCEED
    assert approve.timeout_output == b'{"approved":false}'
    assert nap.sleep.ToSeconds() == 30 and not nap.capability
    defn = validate_workflow(r, SETTINGS)
    assert not defn.steps[0].runs_task and defn.steps[1].sleep_ms == 30000
    assert steps_from_json(steps_to_json(defn.steps)) == defn.steps
    with pytest.raises(WorkflowFileError, match="sleep"):
        req([{"id": "nap", "sleep": "later"}])
    with pytest.raises(WorkflowFileError, match="timeout_outcome"):
        req([{"id": "a", "wait_for_signal": True, "timeout_outcome": "maybe"}])


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ({"id": "a", "wait_for_signal": True, "capability": "x"}, "steps[0].capability"),
        ({"id": "a", "sleep": "1s", "map_over": "a"}, "steps[0].map_over"),
        ({"id": "a", "wait_for_signal": True, "sleep": "1s"}, "steps[0].sleep"),
        ({"id": "a", "capability": "x", "signal_timeout": "1s"}, "steps[0].signal_timeout"),
        ({"id": "a", "wait_for_signal": True, "timeout_outcome": "succeed"},
         "steps[0].timeout_outcome"),
        ({"id": "a", "wait_for_signal": True, "signal_timeout": "1s", "timeout_output": 1},
         "steps[0].timeout_output"),
        ({"id": "a", "sleep": "31d"}, "steps[0].sleep"),
        ({"id": "a"}, "steps[0].capability"),
    ],
)  # fmt: skip
def test_bad_wait_steps_name_their_field(step: dict[str, Any], field: str) -> None:
    assert rejected_field([step]) == field


def test_plan_parks_waiting_steps_once_their_dependencies_succeed() -> None:
    defn = validate_workflow(
        req(
            [
                {"id": "a", "capability": "x"},
                {"id": "gate", "wait_for_signal": True, "depends_on": ["a"],
                 "signal_timeout": "2s"},
                {"id": "nap", "sleep": "1s", "depends_on": ["a"]},
                {"id": "z", "capability": "x", "depends_on": ["gate", "nap"]},
            ]
        ),
        SETTINGS,
    )  # fmt: skip
    steps = {s.step_id: StepRun() for s in defn.steps}
    run = WorkflowRun("w" * 32, defn, workflow_pb2.WORKFLOW_STATE_RUNNING, steps)
    first = plan(run, LIMITS)
    assert [launch.step.step_id for launch in first.launches] == ["a"] and not first.parks
    steps["a"].state = workflow_pb2.STEP_STATE_SUCCEEDED
    steps["a"].output = b"1"
    second = plan(run, LIMITS)
    assert [(p.step_id, p.state, p.wait_ms) for p in second.parks] == [
        ("gate", workflow_pb2.STEP_STATE_AWAITING_SIGNAL, 2000),
        ("nap", workflow_pb2.STEP_STATE_SLEEPING, 1000),
    ]
    assert not second.launches and second.finish is None
    steps["gate"].state = workflow_pb2.STEP_STATE_AWAITING_SIGNAL
    steps["nap"].state = workflow_pb2.STEP_STATE_SLEEPING
    assert plan(run, LIMITS).empty  # nothing to do until a signal or a timer
