"""Parsing of the flow control options: durations, NAME:UNITS, strategy names, workflow keys."""

from __future__ import annotations

import pytest
import typer

from hivewire.cli._ratelimit import parse_duration, parse_units
from hivewire.client._client import concurrency_strategy_value
from hivewire.core.workflow_file import WorkflowFileError, step_spec
from hivewire.v1 import task_pb2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60.0), ("500ms", 0.5), ("30", 30.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--per") == seconds


@pytest.mark.parametrize("text", ["", "1 minute", "m", "-1s"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(typer.BadParameter):
        parse_duration(text, "--per")


def test_units_add_up_per_name_and_default_to_one() -> None:
    assert parse_units(["openai:1500", "other", "openai:5"], "--rate-limit") == {
        "openai": 1505,
        "other": 1,
    }
    with pytest.raises(typer.BadParameter):
        parse_units(["openai:lots"], "--rate-limit")


def test_strategy_names() -> None:
    assert concurrency_strategy_value("cancel-in-progress") == (
        task_pb2.CONCURRENCY_STRATEGY_CANCEL_IN_PROGRESS
    )
    assert concurrency_strategy_value("QUEUE") == task_pb2.CONCURRENCY_STRATEGY_QUEUE
    assert concurrency_strategy_value(3) == task_pb2.CONCURRENCY_STRATEGY_CANCEL_NEWEST
    with pytest.raises(ValueError):
        concurrency_strategy_value("newest-wins")


def test_workflow_file_steps_take_concurrency_keys() -> None:
    raw = {"id": "a", "capability": "deploy", "concurrency_key": "repo:api",
           "concurrency_limit": 2, "concurrency_strategy": "cancel-newest"}  # fmt: skip
    spec = step_spec(raw, 0)
    assert (spec.concurrency_key, spec.concurrency_limit) == ("repo:api", 2)
    assert spec.concurrency_strategy == task_pb2.CONCURRENCY_STRATEGY_CANCEL_NEWEST
    with pytest.raises(WorkflowFileError):
        step_spec({**raw, "concurrency_strategy": "sometimes"}, 0)
