"""Workflows that wait: signal steps, sleep steps (across a coordinator restart) and retry
from failure, through the gateway against real services, Redis and SDK agents."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import grpc
import pytest

from hivewire.agent import NonRetryableError, TaskContext
from hivewire.core.workflow_file import workflow_request
from hivewire.v1 import event_pb2, workflow_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.server import CoordinatorServer
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.waiting import eventually

RUNNING = workflow_pb2.WORKFLOW_STATE_RUNNING
SUCCEEDED = workflow_pb2.STEP_STATE_SUCCEEDED
AWAITING = workflow_pb2.STEP_STATE_AWAITING_SIGNAL


def step(wf: workflow_pb2.Workflow, step_id: str) -> workflow_pb2.WorkflowStep:
    return next(s for s in wf.steps if s.step_id == step_id)


async def step_reaches(stack: Stack, workflow_id: str, step_id: str, state: int) -> None:
    async def reached() -> bool:
        wf = await stack.client.get_workflow(workflow_id)
        return step(wf, step_id).state == state

    await eventually(reached, within=30, message=f"step {step_id} in state {state}")


async def workflow_events(redis: Redis, keys: Keys, workflow_id: str) -> list[int]:
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    return [e.type for e in events if e.workflow_id == workflow_id and not e.task_id]


def echo(ctx: TaskContext) -> Any:
    return ctx.json()["parents"]


async def test_signal_step_waits_then_its_payload_flows_to_the_dependent(
    stack: Stack, redis: Redis, keys: Keys
) -> None:
    await stack.agent("a", {"ask": lambda ctx: {"question": "ship?"}, "act": echo})
    wf = await stack.client.submit_workflow(
        [
            {"id": "ask", "capability": "ask"},
            {"id": "approve", "wait_for_signal": True, "depends_on": ["ask"]},
            {"id": "act", "capability": "act", "depends_on": ["approve"]},
        ]
    )
    wid = wf.workflow_id
    await step_reaches(stack, wid, "approve", AWAITING)
    got = await stack.client.get_workflow(wid)
    assert got.state == RUNNING and step(got, "act").state == workflow_pb2.STEP_STATE_WAITING
    assert step(got, "approve").wait_for_signal
    # Signalling a step that does not wait (yet) or does not exist is refused.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow(wid, "act", {"x": 1})
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow(wid, "nope", {})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow("f" * 32, "approve", {})
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow(wid, "approve", b"{not json")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await stack.client.signal_workflow(wid, "approve", {"approved": True, "by": "ann"})
    # The same signal again is harmless; a different payload is refused.
    await stack.client.signal_workflow(wid, "approve", {"approved": True, "by": "ann"})
    done = await stack.client.wait_workflow(wid, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert json.loads(step(done, "approve").output) == {"approved": True, "by": "ann"}
    assert json.loads(step(done, "act").output) == {"approve": {"approved": True, "by": "ann"}}
    assert step(done, "approve").signalled_by
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow(wid, "approve", {"approved": False})
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await workflow_events(redis, keys, wid) == [
        event_pb2.EVENT_TYPE_WORKFLOW_SUBMITTED,
        event_pb2.EVENT_TYPE_WORKFLOW_STEP_AWAITING_SIGNAL,
        event_pb2.EVENT_TYPE_WORKFLOW_STEP_SIGNALLED,
        event_pb2.EVENT_TYPE_WORKFLOW_SUCCEEDED,
    ]


async def test_signal_timeout_takes_the_default_outcome(stack: Stack) -> None:
    await stack.agent("a", {"act": echo})
    wf = await stack.client.submit_workflow(
        [
            {
                "id": "approve",
                "wait_for_signal": True,
                "signal_timeout": "300ms",
                "timeout_outcome": "succeed",
                "timeout_output": {"approved": False},
            },
            {"id": "gate", "wait_for_signal": True, "signal_timeout": "300ms"},
            {"id": "act", "capability": "act", "depends_on": ["approve"]},
        ],
        failure_policy="continue",
    )
    start = time.monotonic()
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert time.monotonic() - start >= 0.25
    assert step(done, "approve").state == SUCCEEDED
    assert json.loads(step(done, "act").output) == {"approve": {"approved": False}}
    gate = step(done, "gate")
    assert gate.state == workflow_pb2.STEP_STATE_FAILED and "no signal" in gate.error
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED


async def test_sleep_waits_its_duration_before_the_dependent_runs(stack: Stack) -> None:
    ran: list[float] = []

    def act(ctx: TaskContext) -> str:
        ran.append(time.monotonic())
        return "ok"

    await stack.agent("a", {"first": lambda ctx: 1, "act": act})
    wf = await stack.client.submit_workflow(
        [
            {"id": "first", "capability": "first"},
            {"id": "nap", "sleep": "600ms", "depends_on": ["first"]},
            {"id": "act", "capability": "act", "depends_on": ["nap"]},
        ]
    )
    await step_reaches(stack, wf.workflow_id, "nap", workflow_pb2.STEP_STATE_SLEEPING)
    slept_from = time.monotonic()
    got = await stack.client.get_workflow(wf.workflow_id)
    nap = step(got, "nap")
    assert nap.sleep.ToMilliseconds() == 600 and nap.HasField("wake_time")
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert ran and ran[0] - slept_from >= 0.5
    nap = step(done, "nap")
    assert nap.end_time.ToMilliseconds() - nap.start_time.ToMilliseconds() >= 600


async def test_sleep_survives_a_coordinator_restart(make_stack: MakeStack, redis: Redis) -> None:
    stack = await make_stack(coordinator=False, gateway=False)
    settings = stack.settings.coordinator()
    first = CoordinatorServer(settings)
    await first.start("127.0.0.1:0")
    req = workflow_request({"steps": [{"id": "nap", "sleep": "1s"}]})
    wf = await first.workflows.submit(validate_workflow(req, settings))
    assert wf.steps[0].state == workflow_pb2.STEP_STATE_SLEEPING
    await first.shutdown()
    second = CoordinatorServer(settings)
    await second.start("127.0.0.1:0")
    try:

        async def ended() -> workflow_pb2.Workflow | None:
            got = await second.workflows.store.get(wf.workflow_id)
            return got if got.state != RUNNING else None

        done = await eventually(ended, within=30, message="the sleep ending")
    finally:
        await second.shutdown()
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    nap = done.steps[0]
    assert nap.end_time.ToMilliseconds() - nap.start_time.ToMilliseconds() >= 1000


async def test_retry_reruns_only_failed_steps_and_dependents(stack: Stack) -> None:
    runs: Counter[str] = Counter()
    broken = {"yes": True}

    def ok(name: str) -> Any:
        def handle(ctx: TaskContext) -> str:
            runs[name] += 1
            return name

        return handle

    def flaky(ctx: TaskContext) -> str:
        runs["flaky"] += 1
        if broken["yes"]:
            raise NonRetryableError("broken for now")
        return "fixed"

    await stack.agent("a", {"a": ok("a"), "b": ok("b"), "flaky": flaky, "d": ok("d")})
    wf = await stack.client.submit_workflow(
        [
            {"id": "a", "capability": "a"},
            {"id": "b", "capability": "b", "depends_on": ["a"]},
            {"id": "c", "capability": "flaky", "depends_on": ["a"], "max_attempts": 1},
            {"id": "d", "capability": "d", "depends_on": ["b", "c"]},
        ],
        failure_policy="continue",
    )
    failed = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert failed.state == workflow_pb2.WORKFLOW_STATE_FAILED
    assert step(failed, "d").state == workflow_pb2.STEP_STATE_SKIPPED
    kept = {s: (list(step(failed, s).task_ids), step(failed, s).output) for s in ("a", "b")}
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.retry_workflow("f" * 32)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    broken["yes"] = False
    again = await stack.client.retry_workflow(wf.workflow_id)
    assert again.state == RUNNING and again.retry_count == 1
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert runs == {"a": 1, "b": 1, "flaky": 2, "d": 1}
    for s, (task_ids, output) in kept.items():
        assert (list(step(done, s).task_ids), step(done, s).output) == (task_ids, output)
        assert step(done, s).retries == 0
    assert step(done, "c").task_ids != step(failed, "c").task_ids
    assert step(done, "c").retries == 1 and step(done, "d").retries == 1
    # Only a failed or cancelled workflow can be retried.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.retry_workflow(wf.workflow_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_while_awaiting_then_retry_waits_again(stack: Stack) -> None:
    wf = await stack.client.submit_workflow(
        [{"id": "gate", "wait_for_signal": True, "signal_timeout": "1h"}]
    )
    assert wf.steps[0].state == AWAITING and wf.steps[0].HasField("wake_time")
    cancelled = await stack.client.cancel_workflow(wf.workflow_id)
    assert cancelled.state == workflow_pb2.WORKFLOW_STATE_CANCELLED
    assert cancelled.steps[0].state == workflow_pb2.STEP_STATE_CANCELLED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.signal_workflow(wf.workflow_id, "gate", {})
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    again = await stack.client.retry_workflow(wf.workflow_id)
    assert again.state == RUNNING and again.steps[0].state == AWAITING
    await stack.client.signal_workflow(wf.workflow_id, "gate", "42")
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
    assert done.steps[0].output == b"42"


async def cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "--addr", stack.gateway_addr, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_signal_get_and_retry(stack: Stack) -> None:
    wf = await stack.client.submit_workflow(
        [{"id": "gate", "wait_for_signal": True}, {"id": "nap", "sleep": "1h"}]
    )
    code, out, _ = await cli(stack, "workflow", "get", wf.workflow_id)
    assert code == 0
    assert "(signal)" in out and "AWAITING_SIGNAL" in out and "SLEEPING until" in out
    code, out, _ = await cli(
        stack, "workflow", "signal", wf.workflow_id, "gate", "--payload", '{"ok": true}', "--json"
    )
    assert code == 0
    assert json.loads(out)["steps"][0]["output"] == {"ok": True}
    await stack.client.cancel_workflow(wf.workflow_id)
    code, out, _ = await cli(stack, "workflow", "retry", wf.workflow_id, "--json")
    assert code == 0
    again = json.loads(out)
    assert again["state"] == "RUNNING" and again["retry_count"] == 1
    assert [s["state"] for s in again["steps"]] == ["SUCCEEDED", "SLEEPING"]
