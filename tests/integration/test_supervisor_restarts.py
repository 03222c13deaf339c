"""`hivewire up` as a real process tree: a crash-looping child is given up on while the rest keeps
serving; Ctrl-C while a child waits out its restart delay stops everything, with no restart."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from grpc_health.v1 import health_pb2

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.client import Client, task_to_dict
from tests.integration.test_supervisor import READY
from tests.up import still_running, stop_up, up_pids
from tests.waiting import eventually, health_reaches

STOP_LIMIT = 60.0


@dataclass
class Up:
    """A running `hivewire up` and everything it printed so far."""

    proc: asyncio.subprocess.Process
    data_dir: Path
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def pid(self, name: str) -> int:
        return int((self.data_dir / "run" / f"{name}.pid").read_text())

    async def printed(self, text: str, within: float = 60.0) -> None:
        await eventually(lambda: text in self.output, within=within, message=repr(text))

    async def interrupt(self) -> int:
        """Ctrl-C, then its exit status once it stopped (bounded)."""
        self.proc.send_signal(signal.SIGINT)
        return await asyncio.wait_for(self.proc.wait(), STOP_LIMIT)


def assert_stopped_in_order(output: str, *names: str) -> None:
    """Each of these services logged that it stopped, in this order."""
    said = [output.find(f"{name} stopped") for name in names]
    assert -1 not in said and said == sorted(said), output


@asynccontextmanager
async def hivewire_up(data_dir: Path, *args: str) -> AsyncIterator[Up]:
    """`hivewire up ARGS` on port 0 everywhere, once it printed its ready banner."""
    env = {**os.environ, "HIVEWIRE_HOOKS_ADDR": "127.0.0.1:0"}
    proc = await asyncio.create_subprocess_exec(
        *up_command(data_dir, *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    up = Up(proc, data_dir)

    async def pump() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            up.lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(pump())
    try:
        await up.printed(READY.decode(), within=90)
        yield up
    finally:
        await stop_up(proc)
        await asyncio.wait_for(reader, 10)


async def test_a_crash_looping_child_is_given_up_on_and_the_rest_keeps_serving(
    tmp_path: Path,
) -> None:
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("hooks:\n  - name: note\n    on: task.succeeded\n    command: ['true']\n")
    limits = ["--max-restarts", "2", "--restart-window", "60", "--restart-delay", "0.1"]
    async with hivewire_up(tmp_path / "data", "--demo", "--hooks-file", str(hooks), *limits) as up:
        services = {k: v for k, v in running_addrs(up.data_dir).items() if k != "redis"}
        pids = up_pids(up.data_dir)
        # A real failure mode: the hooks file gets broken, then the runner dies; every restart
        # reads the broken file and exits 2.
        hooks.write_text("hooks:\n  - name: note\n    on: task.nope\n    command: ['true']\n")
        os.kill(up.pid("hooks"), signal.SIGKILL)
        await up.printed(
            "[hivewire] hooks exited with 2 while starting; it crashed 3 times in 60s: "
            "giving up on it (the rest keeps serving)"
        )
        out = up.output
        assert "hooks exited with -9 (signal SIGKILL); restarting in" in out
        assert "(restart 1 of 2 in 60s)" in out and "(restart 2 of 2 in 60s)" in out
        assert "restart 3 of" not in out and "hooks is back" not in out
        assert not (up.data_dir / "run" / "hooks.pid").exists()
        del services["hooks"]
        assert up.proc.returncode is None
        await health_reaches(services, health_pb2.HealthCheckResponse.SERVING)
        async with Client(services["gateway"]) as client:
            task = await client.submit_and_wait("echo", {"still": "serving"}, timeout=30)
        assert task_to_dict(task)["state"] == "SUCCEEDED"
        assert task_to_dict(task)["result"] == {"still": "serving"}
        assert await up.interrupt() == 0, up.output
    assert not still_running(pids)


async def test_ctrl_c_while_a_child_waits_to_restart_stops_everything_without_restarting(
    tmp_path: Path,
) -> None:
    # The first restart waits 30-60 s (backoff with jitter), far longer than a stop takes.
    async with hivewire_up(tmp_path / "data", "--restart-delay", "60") as up:
        pids = up_pids(up.data_dir)
        os.kill(up.pid("gateway"), signal.SIGKILL)
        waiting = "[hivewire] gateway exited with -9 (signal SIGKILL); restarting in"
        await up.printed(waiting)
        assert await up.interrupt() == 0, up.output
    after = up.output.split(waiting, 1)[1]
    assert_stopped_in_order(after.split("[hivewire] stopping", 1)[1], "coordinator", "registry")
    assert "gateway is back" not in after and "[gateway]" not in after, after
    assert not still_running(pids)
    assert sorted(p.name for p in (up.data_dir / "run").iterdir()) == []


async def test_giving_up_on_redis_stops_everything_with_exit_1(tmp_path: Path) -> None:
    async with hivewire_up(tmp_path / "data", "--max-restarts", "0") as up:
        pids = up_pids(up.data_dir)
        os.kill(up.pid("redis"), signal.SIGKILL)
        status = await asyncio.wait_for(up.proc.wait(), STOP_LIMIT)
    assert status == 1, up.output
    assert (
        "[hivewire] redis exited with -9 (signal SIGKILL); it crashed 1 time in 60s: giving up "
        "on it, and as nothing works without Redis, stopping everything"
    ) in up.output
    stopping = up.output.split("[hivewire] stopping", 1)[1]
    assert_stopped_in_order(stopping, "gateway", "coordinator", "registry")
    assert not still_running(pids)
