"""What agents send back, bounded by the coordinator: results, errors, and step outputs that
other steps cannot take in."""

from __future__ import annotations

from hivewire.agent import TaskContext
from hivewire.v1 import event_pb2, task_pb2, workflow_pb2
from hivewire_services.common.events import decode_entry
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack

DEEP = b"[" * 50_000 + b"]" * 50_000  # past the JSON nesting limit, and past Python's own


def step(wf: workflow_pb2.Workflow, step_id: str) -> workflow_pb2.WorkflowStep:
    return next(s for s in wf.steps if s.step_id == step_id)


async def test_a_deeply_nested_output_fails_the_step_that_would_take_it_in(stack: Stack) -> None:
    """The workflow ends as its policy says, naming the output, instead of staying RUNNING."""
    received: list[object] = []

    def take(ctx: TaskContext) -> object:
        received.append(ctx.json())
        return {"ok": True}

    await stack.agent("deep", {"deep": lambda ctx: DEEP, "take": take})
    fast = await stack.client.submit_workflow(
        [
            {"id": "parse", "capability": "deep"},
            {"id": "use", "capability": "take", "depends_on": ["parse"]},
        ]
    )
    done = await stack.client.wait_workflow(fast.workflow_id, timeout=60)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED, done
    use = step(done, "use")
    assert use.state == workflow_pb2.STEP_STATE_FAILED
    assert use.error == "output of step 'parse' is nested deeper than 64 levels"
    assert not use.task_ids
    redis, keys = stack.coordinator.redis, stack.coordinator.keys  # type: ignore[union-attr]
    ends = [
        e.message
        for e in (decode_entry(i, f) for i, f in await redis.xrange(keys.events))
        if e.type == event_pb2.EVENT_TYPE_WORKFLOW_FAILED and e.workflow_id == fast.workflow_id
    ]
    assert ends == [f"step use FAILED: {use.error}"]
    go_on = await stack.client.submit_workflow(
        [
            {"id": "parse", "capability": "deep"},
            {"id": "leaf", "capability": "deep"},
            {"id": "use", "capability": "take", "depends_on": ["parse"]},
            {"id": "after", "capability": "take", "depends_on": ["use"]},
        ],
        failure_policy="continue",
    )
    done = await stack.client.wait_workflow(go_on.workflow_id, timeout=60)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED, done
    assert [s.state for s in done.steps] == [
        workflow_pb2.STEP_STATE_SUCCEEDED,
        workflow_pb2.STEP_STATE_SUCCEEDED,
        workflow_pb2.STEP_STATE_FAILED,
        workflow_pb2.STEP_STATE_SKIPPED,
    ]
    # Nothing takes the leaf's output in: it stays as the agent sent it.
    assert step(done, "leaf").output == DEEP
    assert received == []


async def test_results_and_errors_over_their_limits(make_stack: MakeStack, transport: str) -> None:
    """Whichever way the agent reports, the coordinator bounds what it applies."""
    stack = await make_stack(max_result_bytes=1000, max_error_bytes=200)

    def fail(ctx: TaskContext) -> None:
        raise RuntimeError("é" * 1000)

    await stack.agent(
        "big",
        {"big": lambda ctx: b"x" * 1001, "fine": lambda ctx: b"y" * 1000, "fail": fail},
        transport=transport,
    )
    client = stack.client
    big = await client.submit("big", max_attempts=3)
    fine = await client.submit("fine")
    failing = await client.submit("fail", max_attempts=1)
    big_done = await client.wait(big.task_id, timeout=60)
    assert big_done.state == task_pb2.TASK_STATE_FAILED
    assert big_done.attempt == 1  # failed for good: no retry
    assert big_done.error.startswith(
        "ResultTooLarge: the result is 1001 bytes, over the limit of 1000"
    )
    assert big_done.result == b""
    letters, _ = await client.list_dead_letters()
    [letter] = [d for d in letters if d.task.task_id == big.task_id]
    assert letter.errors[0].error == big_done.error
    fine_done = await client.wait(fine.task_id, timeout=60)
    assert (fine_done.state, fine_done.result) == (task_pb2.TASK_STATE_SUCCEEDED, b"y" * 1000)
    failed = await client.wait(failing.task_id, timeout=60)
    assert failed.state == task_pb2.TASK_STATE_FAILED
    assert len(failed.error.encode()) <= 200
    assert failed.error.startswith("RuntimeError: éé")
    assert failed.error.endswith("bytes, over the limit of 200]")
