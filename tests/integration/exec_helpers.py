"""Exec agent tests: scripts that report their pids, whether a pid still runs, an exec agent
on the stack, and the environment for CLI subprocesses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hivewire.agent.exec import ExecCommand, ExecHandler
from tests.integration.stack import Stack
from tests.waiting import eventually

# `sh -c SCRIPT sh PIDFILE`: the command writes its pid, starts a grandchild in the background
# (its pid too), says so, then waits; both must be gone once the task is stopped.
GROUP_SCRIPT = 'echo $$ > "$1.tmp"; sleep 1000 & echo $! >> "$1.tmp"; mv "$1.tmp" "$1"; wait'
# The same, with a grandchild that ignores SIGTERM: only the SIGKILL after the grace ends it.
STUBBORN_SCRIPT = (
    'echo $$ > "$1.tmp"; (trap \'\' TERM; exec sleep 1000) & echo $! >> "$1.tmp"; '
    'mv "$1.tmp" "$1"; wait'
)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def pids_from(pidfile: Path) -> list[int]:
    """The pids a GROUP_SCRIPT wrote (the file appears whole: written aside, then renamed)."""

    def written() -> list[int]:
        assert pidfile.exists(), f"{pidfile} not written yet"
        return [int(line) for line in pidfile.read_text().split()]

    pids = await eventually(written, message="the command's pid file")
    assert len(pids) == 2 and all(alive(pid) for pid in pids), pids
    return pids


async def all_gone(pids: list[int]) -> None:
    await eventually(lambda: not any(alive(pid) for pid in pids), message=f"processes {pids} gone")


async def exec_agent(stack: Stack, argv: list[str], **options: Any) -> None:
    """An agent serving capability `cmd` with `argv` (ExecCommand `options`)."""
    handler = ExecHandler(ExecCommand(argv, kill_grace=1.0, **options))
    await stack.agent("exec", {"cmd": handler.run})


def cli_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIVEWIRE_", "OTEL_"))}
    env["HIVEWIRE_REGISTRY_ADDR"] = stack.settings.registry_addr
    env["HIVEWIRE_REDIS_URL"] = stack.settings.redis_url
    return env
