"""Workflows through the gateway against real services, Redis and SDK agents."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import grpc
import pytest

from hivewire.agent import NonRetryableError, TaskContext
from hivewire.v1 import event_pb2, workflow_pb2
from hivewire_services.common.errors import error_info, field_violations
from hivewire_services.common.events import decode_entry
from tests.integration.stack import Stack
from tests.integration.test_gateway_forwarding import rich_status

SUCCEEDED = workflow_pb2.STEP_STATE_SUCCEEDED


def step(wf: workflow_pb2.Workflow, step_id: str) -> workflow_pb2.WorkflowStep:
    return next(s for s in wf.steps if s.step_id == step_id)


async def test_diamond_runs_across_two_agents_with_parents_outputs(stack: Stack) -> None:
    inputs: dict[str, Any] = {}

    def recorder(name: str) -> Any:
        def handle(ctx: TaskContext) -> Any:
            body = ctx.json()
            inputs[name] = body
            return {"from": name, "n": body.get("n", 0) + len(body["parents"])}

        return handle

    left = await stack.agent("left", {"src": recorder("src"), "join": recorder("join")})
    right = await stack.agent("right", {"branch": recorder("branch")})
    wf = await stack.client.submit_workflow(
        {
            "name": "diamond",
            "steps": [
                {"id": "a", "capability": "src", "payload": {"n": 1}},
                {"id": "b", "capability": "branch", "depends_on": "a"},
                {"id": "c", "capability": "branch", "depends_on": ["a"], "payload": {"n": 10}},
                {"id": "d", "capability": "join", "depends_on": ["b", "c"]},
            ],
        }
    )
    assert wf.state == workflow_pb2.WORKFLOW_STATE_RUNNING
    assert step(wf, "a").state == workflow_pb2.STEP_STATE_RUNNING
    assert step(wf, "d").state == workflow_pb2.STEP_STATE_WAITING
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=60)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert [s.state for s in done.steps] == [SUCCEEDED] * 4
    assert {step(done, "a").agent_id, step(done, "d").agent_id} == {left.agent_id}
    assert {step(done, "b").agent_id, step(done, "c").agent_id} == {right.agent_id}
    # The documented input shape: own payload plus "parents" by step id.
    assert inputs["src"] == {"n": 1, "parents": {}}
    assert json.loads(step(done, "c").output) == {"from": "branch", "n": 11}
    assert inputs["join"] == {
        "parents": {"b": {"from": "branch", "n": 1}, "c": {"from": "branch", "n": 11}}
    }
    d = step(done, "d")
    assert d.attempt == 1 and len(d.task_ids) == 1
    assert d.start_time.ToMilliseconds() <= d.end_time.ToMilliseconds()
    # Each step's task carries workflow and step ids; workflow events are on the events stream.
    task = await stack.client.get(d.task_ids[0])
    assert (task.workflow_id, task.step_id) == (wf.workflow_id, "d")
    redis = stack.coordinator.redis  # type: ignore[union-attr]
    keys = stack.coordinator.keys  # type: ignore[union-attr]
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    mine = [e.type for e in events if e.workflow_id == wf.workflow_id and not e.task_id]
    assert mine == [
        event_pb2.EVENT_TYPE_WORKFLOW_SUBMITTED,
        event_pb2.EVENT_TYPE_WORKFLOW_SUCCEEDED,
    ]


async def test_map_step_over_100_items_fans_in(stack: Stack) -> None:
    runs: Counter[int] = Counter()

    def square(ctx: TaskContext) -> int:
        body = ctx.json()
        runs[body["index"]] += 1
        assert body["parents"] == {"offset": 1000}  # other parents, not the mapped one
        return int(body["item"]) ** 2 + body["parents"]["offset"] - 1000

    handlers = {
        "gen": lambda ctx: list(range(ctx.json()["n"])),
        "const": lambda ctx: 1000,
        "square": square,
        "total": lambda ctx: sum(ctx.json()["parents"]["sq"]),
    }
    await stack.agent("one", handlers)
    await stack.agent("two", {"square": square})
    wf = await stack.client.submit_workflow(
        [
            {"id": "nums", "capability": "gen", "payload": {"n": 100}},
            {"id": "offset", "capability": "const"},
            {"id": "sq", "capability": "square", "map_over": "nums", "depends_on": ["offset"]},
            {"id": "sum", "capability": "total", "depends_on": ["sq"]},
        ]
    )
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=90)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    sq = step(done, "sq")
    assert (sq.map_total, sq.map_done, len(sq.task_ids)) == (100, 100, 100)
    assert json.loads(sq.output) == [i * i for i in range(100)]
    assert json.loads(step(done, "sum").output) == sum(i * i for i in range(100))
    assert runs == dict.fromkeys(range(100), 1)
    agents = {(await stack.client.get(t)).agent_id for t in sq.task_ids}
    assert len(agents) == 2


async def test_empty_map_succeeds_and_non_array_fails(stack: Stack) -> None:
    await stack.agent("a", {"give": lambda ctx: ctx.json()["v"], "echo": lambda ctx: ctx.json()})
    ok = await stack.client.submit_workflow(
        [
            {"id": "g", "capability": "give", "payload": {"v": []}},
            {"id": "m", "capability": "echo", "map_over": "g"},
            {"id": "after", "capability": "echo", "depends_on": ["m"]},
        ]
    )
    done = await stack.client.wait_workflow(ok.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    assert step(done, "m").output == b"[]"
    assert json.loads(step(done, "after").output) == {"parents": {"m": []}}
    bad = await stack.client.submit_workflow(
        [
            {"id": "g", "capability": "give", "payload": {"v": {"not": "a list"}}},
            {"id": "m", "capability": "echo", "map_over": "g"},
        ]
    )
    failed = await stack.client.wait_workflow(bad.workflow_id, timeout=30)
    assert failed.state == workflow_pb2.WORKFLOW_STATE_FAILED
    assert "not a JSON array" in step(failed, "m").error


async def slow(ctx: TaskContext) -> str:
    await asyncio.sleep(float(ctx.json().get("s", 0.05)))  # the work: as long as asked
    return "ok"


def broken(ctx: TaskContext) -> None:
    raise NonRetryableError("broken on purpose")


BRANCHY = [
    {"id": "bad", "capability": "broken"},
    {"id": "after-bad", "capability": "slow", "depends_on": ["bad"]},
    {"id": "long", "capability": "slow", "payload": {"s": 1.5}},
    {"id": "after-long", "capability": "slow", "depends_on": ["long"]},
]


async def test_fail_fast_cancels_the_rest(stack: Stack) -> None:
    await stack.agent("a", {"slow": slow, "broken": broken})
    wf = await stack.client.submit_workflow({"failure_policy": "fail_fast", "steps": BRANCHY})
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED
    states = {s.step_id: s.state for s in done.steps}
    assert states["bad"] == workflow_pb2.STEP_STATE_FAILED
    assert "broken on purpose" in step(done, "bad").error
    for sid in ("after-bad", "long", "after-long"):
        assert states[sid] == workflow_pb2.STEP_STATE_CANCELLED, sid
    long_task = await stack.client.get(step(done, "long").task_ids[0])
    assert long_task.state == 6  # TASK_STATE_CANCELLED: the running task was cancelled too


async def test_continue_lets_independent_branches_finish(stack: Stack) -> None:
    await stack.agent("a", {"slow": slow, "broken": broken})
    wf = await stack.client.submit_workflow({"failure_policy": "continue", "steps": BRANCHY})
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED
    states = {s.step_id: s.state for s in done.steps}
    assert states == {
        "bad": workflow_pb2.STEP_STATE_FAILED,
        "after-bad": workflow_pb2.STEP_STATE_SKIPPED,
        "long": SUCCEEDED,
        "after-long": SUCCEEDED,
    }


async def test_cancel_workflow_and_list_pages(stack: Stack) -> None:
    await stack.agent("a", {"slow": slow})
    wf = await stack.client.submit_workflow(
        [
            {"id": "x", "capability": "slow", "payload": {"s": 30}},
            {"id": "y", "capability": "slow", "depends_on": ["x"]},
        ]
    )
    cancelled = await stack.client.cancel_workflow(wf.workflow_id)
    assert cancelled.state == workflow_pb2.WORKFLOW_STATE_CANCELLED
    assert {s.state for s in cancelled.steps} == {workflow_pb2.STEP_STATE_CANCELLED}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.cancel_workflow(wf.workflow_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    for i in range(4):
        await stack.client.submit_workflow([{"id": "s", "capability": "slow"}], name=f"w{i}")
    first, token = await stack.client.list_workflows(page_size=3)
    second, last = await stack.client.list_workflows(page_size=3, page_token=token)
    assert [w.name for w in first] == ["w3", "w2", "w1"]
    assert [w.name for w in second] == ["w0", ""] and last == ""
    only, _ = await stack.client.list_workflows(state=workflow_pb2.WORKFLOW_STATE_CANCELLED)
    assert [w.workflow_id for w in only] == [wf.workflow_id]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.get_workflow("f" * 32)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_request_id_returns_the_same_workflow(stack: Stack) -> None:
    await stack.agent("a", {"slow": slow})
    steps = [{"id": "s", "capability": "slow"}]
    one = await stack.client.submit_workflow(steps, request_id="same")
    two = await stack.client.submit_workflow(steps, request_id="same")
    assert one.workflow_id == two.workflow_id


async def test_invalid_workflows_are_rejected_before_anything_is_stored(stack: Stack) -> None:
    cyclic = [
        {"id": "a", "capability": "x", "depends_on": ["c"]},
        {"id": "b", "capability": "x", "depends_on": ["a"]},
        {"id": "c", "capability": "x", "depends_on": ["b"]},
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.submit_workflow(cyclic)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a -> c -> b -> a" in (err.value.details() or "")
    status = rich_status(err.value)
    assert error_info(status).reason == "WORKFLOW_HAS_CYCLE"  # type: ignore[union-attr]
    bad = [
        {"id": "a", "capability": "x", "depends_on": ["nope"]},
        {"id": "a", "capability": "x"},
    ]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.submit_workflow(bad)
    fields = {v.field for v in field_violations(rich_status(err.value))}
    assert fields == {"steps[0].depends_on", "steps[1].step_id"}
    listed, _ = await stack.client.list_workflows()
    assert listed == []
