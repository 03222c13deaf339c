"""The CLI on the in-process stack: workflow trace ids, and the no-live-agent hint of --wait."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from hivewire.agent import TaskContext
from hivewire.v1 import task_pb2
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.waiting import eventually

ASSIGNED, RUNNING = task_pb2.TASK_STATE_ASSIGNED, task_pb2.TASK_STATE_RUNNING
HINT = "hint: no live agent offers capability {!r}"
COMMAND = """\
name: greet
description: One echo step.
steps:
  - {id: hello, capability: echo, payload: {text: hi}}
"""
TWO_STEPS = """\
name: two-step
steps:
  - {id: first, capability: echo, payload: {text: hi}}
  - {id: second, capability: nobody-else, depends_on: [first]}
"""


class Cli:
    """`python -m hivewire.cli --addr GATEWAY ARGS...` as a subprocess; stderr read line by
    line while it runs, so a test can act on what it says before it ends."""

    def __init__(self, stack: Stack, *args: str) -> None:
        self.args = ["-m", "hivewire.cli", "--addr", stack.gateway_addr, *args]
        self.err: list[str] = []

    async def __aenter__(self) -> Cli:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVEWIRE_", "OTEL_"))}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read_stderr())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self._reader.cancel()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.err.append(line.decode().rstrip("\n"))

    async def said(self, text: str) -> None:
        await eventually(lambda: any(text in line for line in self.err), message=repr(text))

    async def result(self) -> tuple[int, str, str]:
        """Exit code, stdout, stderr once the command ends."""
        assert self.proc.stdout is not None
        out = await asyncio.wait_for(self.proc.stdout.read(), 60)
        code = await asyncio.wait_for(self.proc.wait(), 60)
        await asyncio.wait_for(self._reader, 10)
        return code, out.decode(), "\n".join(self.err)


async def run_cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    async with Cli(stack, *args) as cli:
        return await cli.result()


def echo(ctx: TaskContext) -> object:
    return ctx.payload


def gateway_calls(method: str) -> float:
    """How many `method` calls the (in-process) gateway answered OK so far."""
    labels = {"method": f"hivewire.v1.GatewayService/{method}", "code": "OK"}
    return REGISTRY.get_sample_value("hivewire_rpc_duration_seconds_count", labels) or 0.0


async def more_calls(method: str, n: int) -> None:
    before = gateway_calls(method)
    await eventually(lambda: gateway_calls(method) >= before + n, message=f"{n} more {method}")


@pytest.fixture
async def commands_stack(make_stack: MakeStack, tmp_path: Path) -> Stack:
    """The stack with command `greet` (one `echo` step) and an agent for `echo`."""
    (tmp_path / "greet.yaml").write_text(COMMAND)
    stack = await make_stack(commands_dir=str(tmp_path))
    await stack.agent("echo-agent", {"echo": echo})
    return stack


async def test_run_wait_json_gives_the_workflows_trace_id(commands_stack: Stack) -> None:
    code, out, err = await run_cli(commands_stack, "run", "greet", "--wait", "--json")
    assert code == 0, (out, err)
    wf = json.loads(out)
    assert wf["state"] == "SUCCEEDED"
    stored = await commands_stack.client.get_workflow(wf["workflow_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", wf["trace_id"])
    assert wf["trace_id"] == stored.trace_id
    assert "trace_id" not in err and "hint:" not in err  # JSON only; an agent was live


async def test_workflow_commands_print_the_trace_id_on_stderr(
    commands_stack: Stack, tmp_path: Path
) -> None:
    code, out, err = await run_cli(commands_stack, "run", "greet", "--wait")
    assert code == 0, (out, err)
    workflow_id = out.split()[1]
    trace_id = (await commands_stack.client.get_workflow(workflow_id)).trace_id
    assert f"trace_id {trace_id}" in err.splitlines()
    code, out, err = await run_cli(commands_stack, "workflow", "get", workflow_id)
    assert (code, f"trace_id {trace_id}" in err.splitlines()) == (0, True), (out, err)
    code, out, _ = await run_cli(commands_stack, "workflow", "get", workflow_id, "--json")
    assert json.loads(out)["trace_id"] == trace_id
    flow = tmp_path / "flow.yaml"
    flow.write_text("steps:\n  - {id: a, capability: echo}\n")
    code, out, err = await run_cli(commands_stack, "workflow", "run", str(flow))
    assert code == 0, err
    trace_id = (await commands_stack.client.get_workflow(out.strip())).trace_id
    assert err.splitlines() == [f"trace_id {trace_id}"]


async def test_submit_to_nobody_hints_once_keeps_waiting_and_ends_when_an_agent_comes(
    stack: Stack,
) -> None:
    args = ["submit", "nobody", "--payload", '{"n": 1}', "--wait", "--json", "--hint-after", "0.1"]
    async with Cli(stack, *args) as cli:
        await cli.said(HINT.format("nobody"))
        await more_calls("GetTask", 5)  # the wait goes on, and so do the hint's rounds
        queued = [t async for t in stack.client.iter_tasks(capability="nobody")]
        assert [t.state for t in queued] == [task_pb2.TASK_STATE_PENDING]  # nothing dropped
        assert cli.proc.returncode is None  # still waiting
        await stack.agent("late", {"nobody": echo})
        code, out, err = await cli.result()
    assert code == 0, (out, err)
    task = json.loads(out)
    assert (task["task_id"], task["state"]) == (queued[0].task_id, "SUCCEEDED")
    assert task["result"] == {"n": 1}
    assert err.count(HINT.format("nobody")) == 1, err
    assert "the task stays queued until one registers (hivewire agents)" in err


async def test_no_hint_while_a_live_agent_offers_the_capability(stack: Stack) -> None:
    release = asyncio.Event()

    async def busy(ctx: TaskContext) -> object:
        await release.wait()
        return "done"

    await stack.agent("busy-agent", {"busy": busy}, max_concurrency=1)
    [first] = await stack.submit("busy")  # takes the agent's one slot: the CLI's task queues

    async def taken() -> bool:
        return (await stack.states([first.task_id]))[0] in (ASSIGNED, RUNNING)

    await eventually(taken, message="the first task taken")
    checks = gateway_calls("ListAgents")
    async with Cli(stack, "submit", "busy", "--wait", "--hint-after", "0.1") as cli:
        # The check ran while the task was queued behind the first, found the agent, and the
        # CLI went on waiting (more GetTask calls) without a hint.
        await eventually(lambda: gateway_calls("ListAgents") > checks, message="the check")
        await more_calls("GetTask", 3)
        release.set()
        code, out, err = await cli.result()
    assert code == 0, (out, err)
    assert "SUCCEEDED" in out and "hint:" not in err, err


async def test_labels_no_agent_carries_are_named_in_the_hint(stack: Stack) -> None:
    await stack.agent("plain", {"gpu": echo})
    args = ["submit", "gpu", "--label", "zone=b", "--wait", "--hint-after", "0.1"]
    async with Cli(stack, *args) as cli:
        await cli.said(HINT.format("gpu") + " with labels zone=b;")


async def test_workflow_wait_hints_the_capability_of_the_step_that_waits(
    commands_stack: Stack, tmp_path: Path
) -> None:
    flow = tmp_path / "flows" / "two-step.yaml"
    flow.parent.mkdir()
    flow.write_text(TWO_STEPS)
    args = ["workflow", "run", str(flow), "--wait", "--hint-after", "0.1"]
    async with Cli(commands_stack, *args) as cli:
        await cli.said(HINT.format("nobody-else"))
        await commands_stack.agent("late", {"nobody-else": echo})
        code, out, err = await cli.result()
    assert code == 0, (out, err)
    assert "SUCCEEDED" in out.splitlines()[0]
    assert err.count("hint: no live agent") == err.count(HINT.format("nobody-else")) == 1, err
