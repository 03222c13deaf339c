"""Exec agents on the in-process stack, running real `sh` scripts: results, failures and
retries, placeholders, cancel and timeouts that stop the whole process group, and the
`hivewire exec-agent` command itself serving a task the CLI submitted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hivewire.v1 import task_pb2
from tests.integration.exec_helpers import GROUP_SCRIPT, all_gone, cli_env, exec_agent, pids_from
from tests.integration.stack import Stack

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
FAILED = task_pb2.TASK_STATE_FAILED
CANCELLED = task_pb2.TASK_STATE_CANCELLED


async def run(stack: Stack, payload: object = None, **kw: Any) -> task_pb2.Task:
    task = await stack.client.submit("cmd", payload, **kw)
    return await stack.client.wait(task.task_id, timeout=60)


async def test_the_last_stdout_line_is_the_result_when_it_is_json(stack: Stack) -> None:
    await exec_agent(stack, ["sh", "-c", "echo step one; echo step two; echo '{{\"ok\": true}}'"])
    done = await run(stack)
    assert done.state == SUCCEEDED, done.error
    assert json.loads(done.result) == {"ok": True}


async def test_otherwise_the_result_is_the_tail_of_stdout(stack: Stack) -> None:
    await exec_agent(stack, ["sh", "-c", "seq 1 80 | sed 's/^/line /'"])
    done = await run(stack)
    assert done.state == SUCCEEDED, done.error
    assert json.loads(done.result) == {"output": "\n".join(f"line {i}" for i in range(31, 81))}


async def test_a_non_zero_exit_fails_with_its_status_and_stderr_and_is_retried(
    stack: Stack,
) -> None:
    script = 'echo working; echo "attempt $HIVEWIRE_ATTEMPT: no such repo" >&2; exit 7'
    await exec_agent(stack, ["sh", "-c", script])
    done = await run(stack, max_attempts=2)
    assert done.state == FAILED
    assert done.attempt == 2
    assert done.error == "CommandFailed: exit status 7; stderr:\nattempt 2: no such repo"


async def test_a_permanent_exit_code_is_not_retried(stack: Stack) -> None:
    await exec_agent(
        stack, ["sh", "-c", "echo bad input >&2; exit 3"], permanent_exit_codes=frozenset({3})
    )
    done = await run(stack, max_attempts=3)
    assert (done.state, done.attempt) == (FAILED, 1)
    assert done.error == "NonRetryableError: exit status 3; stderr:\nbad input"


async def test_placeholders_are_filled_from_the_json_payload(stack: Stack) -> None:
    await exec_agent(stack, ["printf", '{{"repo": "%s", "n": %s}}\\n', "{repo}", "{n}"])
    done = await run(stack, {"repo": "a b; c", "n": 3}, max_attempts=3)
    assert done.state == SUCCEEDED, done.error
    assert json.loads(done.result) == {"repo": "a b; c", "n": 3}
    missing = await run(stack, {"repo": "r"}, max_attempts=3)
    assert (missing.state, missing.attempt) == (FAILED, 1)
    assert missing.error == "NonRetryableError: payload has no field 'n' (placeholder {n})"


async def test_cancel_stops_the_command_and_its_grandchild(stack: Stack, tmp_path: Path) -> None:
    await exec_agent(stack, ["sh", "-c", GROUP_SCRIPT, "sh", "{pidfile}"])
    pidfile = tmp_path / "pids"
    task = await stack.client.submit("cmd", {"pidfile": str(pidfile)})
    pids = await pids_from(pidfile)
    await stack.client.cancel(task.task_id)
    await all_gone(pids)
    assert (await stack.client.get(task.task_id)).state == CANCELLED


async def test_the_timeout_stops_the_group_and_fails_the_task(stack: Stack, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    await exec_agent(stack, ["sh", "-c", GROUP_SCRIPT, "sh", str(pidfile)], timeout=0.5)
    done = await run(stack, max_attempts=1)
    assert done.state == FAILED
    assert done.error == "CommandTimedOut: timed out after 0.5 s; its process group was stopped"
    await all_gone([int(p) for p in pidfile.read_text().split()])


@contextlib.asynccontextmanager
async def exec_agent_process(stack: Stack, *args: str) -> AsyncIterator[None]:
    """`hivewire exec-agent ARGS` as a subprocess, registered; SIGTERM at the end, exit 0."""
    agent = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "exec-agent", *args,
        env=cli_env(stack), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await stack.wait_agents(1)
        yield
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(agent.communicate(), 60)
    assert agent.returncode == 0, err.decode()


async def test_the_exec_agent_command_serves_a_task_submitted_by_the_cli(stack: Stack) -> None:
    async with exec_agent_process(stack, "--capability", "sh-echo", "--", "sh", "-c", "cat"):
        submit = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hivewire.cli", "--addr", stack.gateway_addr,
            "submit", "sh-echo", "--payload", '{"a": [1, 2]}', "--wait", "--json",
            env=cli_env(stack), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(submit.communicate(), 60)
        assert submit.returncode == 0, out
        task = json.loads(out)
        assert (task["state"], task["result"]) == ("SUCCEEDED", {"a": [1, 2]})
        [agent] = (await stack.client.list_agents())[0]
        assert (agent.name, task["agent_id"]) == ("exec-sh-echo", agent.agent_id)


async def test_a_stopped_exec_agent_leaves_no_process_behind(stack: Stack, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    args = ["--drain-grace", "0.2", "--kill-grace", "0.2"]
    async with exec_agent_process(
        stack, "--capability", "cmd", *args, "--", "sh", "-c", GROUP_SCRIPT, "sh", str(pidfile)
    ):
        await stack.client.submit("cmd")
        pids = await pids_from(pidfile)
    await all_gone(pids)  # the drain grace passed: the group was stopped before the exit
