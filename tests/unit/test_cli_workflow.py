"""Text output of the workflow commands."""

from __future__ import annotations

from hivewire.cli._workflow import workflow_detail
from hivewire.client._workflow import workflow_to_dict
from hivewire.v1 import workflow_pb2

OK = workflow_pb2.STEP_STATE_SUCCEEDED


def test_detail_shows_steps_and_the_final_outputs() -> None:
    wf = workflow_pb2.Workflow(
        workflow_id="a" * 32,
        name="demo",
        state=workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
        trace_id="b" * 32,
        steps=[
            workflow_pb2.WorkflowStep(step_id="split", capability="chunk", state=OK, output=b"[1]"),
            workflow_pb2.WorkflowStep(
                step_id="count",
                capability="wordcount",
                depends_on=["split"],
                map_over="split",
                state=OK,
                map_total=1,
                map_done=1,
                output=b'{"top": ["to"]}',
                attempt=2,
            ),
        ],
    )
    text = workflow_detail(wf)
    assert text.splitlines()[0] == f"workflow {'a' * 32}  SUCCEEDED  demo"
    assert "SUCCEEDED 1/1" in text
    assert text.splitlines()[-1] == 'count: {"top": ["to"]}'  # only the final step
    d = workflow_to_dict(wf)
    assert d["trace_id"] == "b" * 32
    assert d["steps"][1]["output"] == {"top": ["to"]}
    assert (d["steps"][1]["map_total"], d["steps"][1]["attempt"]) == (1, 2)
    assert "map_over" not in d["steps"][0]
