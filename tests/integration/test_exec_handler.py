"""ExecHandler on real `sh` processes, one attempt at a time (no services): stdin, environment,
working directories, leftovers, back-pressure, and stopping the whole process group."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hivewire.agent._task import run_attempt
from hivewire.agent.exec import ExecCommand, ExecHandler
from hivewire.agent.exec._group import start_grouped
from hivewire.agent.exec._lines import read_lines
from hivewire.v1 import stream_pb2
from tests.integration.exec_helpers import GROUP_SCRIPT, STUBBORN_SCRIPT, all_gone, pids_from
from tests.waiting import eventually

SUCCEEDED = stream_pb2.TASK_OUTCOME_SUCCEEDED
FAILED = stream_pb2.TASK_OUTCOME_FAILED


def envelope(payload: object = None, timeout: float | None = None) -> stream_pb2.TaskEnvelope:
    env = stream_pb2.TaskEnvelope(
        task_id="a" * 32,
        attempt=1,
        attempt_token="t" * 32,
        capability="cmd",
        payload=json.dumps(payload).encode() if payload is not None else b"",
        agent_id="b" * 32,
    )
    if timeout is not None:
        env.attempt_timeout.FromMilliseconds(int(timeout * 1000))
    return env


async def attempt(handler: ExecHandler, env: stream_pb2.TaskEnvelope) -> stream_pb2.TaskResult:
    async def report(result: stream_pb2.TaskResult) -> None:
        pass

    return await run_attempt(env, handler.run, report, 60.0)


def sh(script: str, *args: str, **options: Any) -> ExecHandler:
    return ExecHandler(ExecCommand(["sh", "-c", script, "sh", *args], **options))


async def test_payload_on_stdin_task_variables_and_a_fresh_directory_removed_after(
    tmp_path: Path,
) -> None:
    script = 'cat > in.json; echo "$HIVEWIRE_TASK_ID $HIVEWIRE_ATTEMPT $HIVEWIRE_CAPABILITY"; pwd'
    result = await attempt(sh(script, workdir=str(tmp_path)), envelope({"big": "x" * 200_000}))
    assert result.outcome == SUCCEEDED, result.error
    ids, cwd = json.loads(result.result)["output"].split("\n")
    assert ids == f"{'a' * 32} 1 cmd"
    assert Path(cwd).parent == tmp_path and Path(cwd).name.startswith(f"hivewire-{'a' * 32}-1-")
    assert os.listdir(tmp_path) == []  # removed with what the command wrote there


async def test_keep_workdir_keeps_it_and_cwd_runs_in_one_place(tmp_path: Path) -> None:
    kept = await attempt(sh("cat > in.json", workdir=str(tmp_path), keep_workdir=True), envelope(7))
    assert kept.outcome == SUCCEEDED, kept.error
    [workdir] = [tmp_path / name for name in os.listdir(tmp_path)]
    assert (workdir / "in.json").read_text() == "7"
    shared = tmp_path / "shared"
    shared.mkdir()
    here = await attempt(sh("pwd", cwd=str(shared)), envelope())
    assert json.loads(here.result) == {"output": str(shared)}


async def test_a_command_that_is_not_there_fails_and_may_be_retried(tmp_path: Path) -> None:
    handler = ExecHandler(ExecCommand([str(tmp_path / "missing")]))
    result = await attempt(handler, envelope())
    assert result.outcome == FAILED
    assert result.error.startswith("CommandNotStarted: cannot start")
    assert os.listdir(tmp_path) == []


async def test_processes_left_behind_by_a_finished_command_are_stopped(tmp_path: Path) -> None:
    # The grandchild keeps stdout open: without stopping the group the output never ends.
    script = 'sleep 1000 & echo $$ $! > "$1"; echo done'
    pidfile = tmp_path / "pids"
    result = await attempt(sh(script, str(pidfile), kill_grace=30), envelope())
    assert result.outcome == SUCCEEDED, result.error
    assert json.loads(result.result) == {"output": "done"}
    await all_gone([int(p) for p in pidfile.read_text().split()])


async def test_cancel_kills_a_grandchild_that_ignores_sigterm_after_the_grace(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "pids"
    handler = sh(STUBBORN_SCRIPT, str(pidfile), kill_grace=0.3)
    running = asyncio.create_task(attempt(handler, envelope()))
    pids = await pids_from(pidfile)
    running.cancel()
    await asyncio.wait({running}, timeout=30)
    assert running.cancelled()
    await all_gone(pids)


async def test_the_sdk_attempt_timeout_stops_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    result = await attempt(sh(GROUP_SCRIPT, str(pidfile)), envelope(timeout=0.5))
    assert result.outcome == FAILED
    assert result.error == "TimeoutError: attempt timed out"
    await all_gone([int(p) for p in pidfile.read_text().split()])


async def test_a_slow_reader_blocks_the_writer_instead_of_buffering(tmp_path: Path) -> None:
    command = await start_grouped(
        ["sh", "-c", "while :; do echo a-line-of-output; done"],
        cwd=str(tmp_path),
        env={"PATH": "/usr/bin:/bin"},
        stdin=b"",
        limit=1024,
    )
    release = asyncio.Event()
    seen: list[str] = []

    async def slow(line: str) -> None:
        seen.append(line)
        await release.wait()

    reading = asyncio.create_task(read_lines(command.stdout, 1024, slow))
    try:

        def blocked_in_write() -> bool:
            wchan = Path(f"/proc/{command.pid}/wchan").read_text()
            return bool(seen) and "pipe_write" in wchan

        await eventually(blocked_in_write, message="the command blocked on a full pipe")
        assert seen == ["a-line-of-output"]  # blocked after one line: nothing piles up here
        release.set()
        await eventually(lambda: len(seen) > 10_000, message="reading resumed")
    finally:
        release.set()
        await command.stop_group(1.0)
        await asyncio.wait_for(reading, 30)
        command.close()


async def test_a_command_killed_by_a_signal_says_which() -> None:
    result = await attempt(sh("echo dying >&2; kill -KILL $$"), envelope())
    assert result.outcome == FAILED
    assert result.error == "CommandFailed: killed by signal SIGKILL; stderr:\ndying"


async def test_without_pidfd_a_thread_waits_for_the_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open")  # as on macOS or Linux before 5.3
    pidfile = tmp_path / "pids"
    result = await attempt(sh('sleep 1000 & echo $$ $! > "$1"; exit 5', str(pidfile)), envelope())
    assert result.error == "CommandFailed: exit status 5"
    await all_gone([int(p) for p in pidfile.read_text().split()])
