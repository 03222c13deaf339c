"""Loads Lua scripts with the shared prelude and the enum constants of the generated code."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis.commands.core import AsyncScript

from hivewire.v1 import agent_pb2, event_pb2, stream_pb2, task_pb2, workflow_pb2
from hivewire_services.common.redis import Redis

_HERE = Path(__file__).parent


@cache
def constants() -> str:
    """`local NAME = number` for every value of the enums scripts use."""
    lines = []
    for enum in (
        task_pb2.TaskState,
        event_pb2.EventType,
        agent_pb2.AgentState,
        stream_pb2.TaskOutcome,
        workflow_pb2.WorkflowState,
        workflow_pb2.StepState,
    ):
        for name, number in enum.items():
            lines.append(f"local {name} = {number}")
    names = ", ".join(
        f"[{n}] = '{name.removeprefix('TASK_STATE_')}'" for name, n in task_pb2.TaskState.items()
    )
    lines.append(f"local TASK_STATE_NAMES = {{{names}}}")
    return "\n".join(lines) + "\n"


def script_source(path: Path, libs: tuple[Path, ...] = ()) -> str:
    """Constants, the prelude, any libraries, then the script body."""
    parts = [constants(), (_HERE / "prelude.lua").read_text()]
    parts += [lib.read_text() for lib in libs]
    parts.append(path.read_text())
    return "\n".join(parts)


def register(redis: Redis, path: Path, libs: tuple[Path, ...] = ()) -> AsyncScript:
    """A script object that runs by SHA and reloads itself after a SCRIPT FLUSH or restart."""
    return redis.register_script(script_source(path, libs))


def register_common(redis: Redis, name: str) -> AsyncScript:
    """A script shared by several areas, kept here (`<name>.lua`, e.g. retention in expire.lua)."""
    return register(redis, _HERE / f"{name}.lua")
