"""An exec agent's live output on the in-process stack: stdout and stderr lines read back in
order, seen while the command still runs, and followed by `hivewire task output --follow`."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from hivewire.v1 import stream_pb2, task_pb2
from tests.integration.exec_helpers import cli_env, exec_agent
from tests.integration.stack import Stack

STDOUT, STDERR = stream_pb2.OUTPUT_STREAM_STDOUT, stream_pb2.OUTPUT_STREAM_STDERR


async def lines(stack: Stack, task_id: str) -> dict[int, list[str]]:
    """The task's stored output, by stream."""
    out: dict[int, list[str]] = {STDOUT: [], STDERR: []}
    async for chunk in stack.client.task_output(task_id):
        out[chunk.stream].append(chunk.text)
    return out


async def test_stdout_and_stderr_lines_are_the_tasks_output_in_order(stack: Stack) -> None:
    script = (
        "echo one; echo warn-1 >&2; echo; echo two; echo warn-2 >&2; "
        "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'"
    )
    await exec_agent(stack, ["sh", "-c", script])
    task = await stack.client.submit("cmd")
    done = await stack.client.wait(task.task_id, timeout=60)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done.error
    got = await lines(stack, task.task_id)
    assert got[STDERR] == ["warn-1", "warn-2"]
    first, blank, second, *long, last = got[STDOUT]
    assert (first, blank, second, last) == ("one", "", "two", "no newline")
    assert "".join(long) == "x" * 40000 and len(long) > 1  # one long line, in pieces


async def test_output_is_seen_while_the_command_runs(stack: Stack) -> None:
    await exec_agent(stack, ["sh", "-c", "echo started; echo still going >&2; exec sleep 1000"])
    task = await stack.client.submit("cmd")
    seen: list[tuple[int, str]] = []
    following = stack.client.task_output(task.task_id, follow=True)
    try:
        async for chunk in following:
            seen.append((chunk.stream, chunk.text))
            if len(seen) == 2:
                break
    finally:
        await following.aclose()
    assert sorted(seen) == [(STDOUT, "started"), (STDERR, "still going")]
    assert (await stack.client.get(task.task_id)).state == task_pb2.TASK_STATE_RUNNING
    await stack.client.cancel(task.task_id)


async def test_the_cli_follows_the_output_until_the_task_ends(stack: Stack, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    script = 'echo first; read go < "$1"; echo "then $go"; echo done-err >&2'
    await exec_agent(stack, ["sh", "-c", script, "sh", str(gate)])
    task = await stack.client.submit("cmd")
    follow = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "--addr", stack.gateway_addr,
        "task", "output", task.task_id, "--follow",
        env=cli_env(stack), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert follow.stdout is not None
    try:
        assert await asyncio.wait_for(follow.stdout.readline(), 60) == b"first\n"
        await asyncio.to_thread(gate.write_text, "go\n")  # the script waits on the fifo
        rest, err = await asyncio.wait_for(follow.communicate(), 60)
    finally:
        if follow.returncode is None:
            follow.kill()
            await follow.wait()
    assert follow.returncode == 0, err
    assert rest == b"then go\n"
    assert err.decode().splitlines()[-1:] == ["done-err"]
