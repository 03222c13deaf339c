"""Loads Lua scripts with the shared prelude and the constants generated from the Python side."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from redis.commands.core import AsyncScript

from hivewire.v1 import agent_pb2, event_pb2, schedule_pb2, stream_pb2, task_pb2, workflow_pb2
from hivewire_services.common.keys import script_key_names
from hivewire_services.common.principal import DEFAULT_TENANT
from hivewire_services.common.redis import Redis
from hivewire_services.common.task_fields import lua_rows, lua_tables

_HERE = Path(__file__).parent
Layouts = Mapping[str, tuple[str, ...]]
"""Row layout name -> field names in order (generated as index constants, see `lua_row`)."""


def lua_list(name: str, items: tuple[str, ...]) -> str:
    """`local NAME = {'a', 'b'}`: names are identifiers, so they need no escaping."""
    return f"local {name} = {{{', '.join(repr(i) for i in items)}}}"


def lua_row(name: str, fields: tuple[str, ...]) -> str:
    """A row layout as plain numbers: `local NAME_WIDTH = n` and `local NAME_FIELD = i` (1-based).

    A script reads field `f` of the row after slot `b` as `ARGV[b + NAME_F]`: no table is built
    per call or per row.
    """
    lines = [f"local {name}_WIDTH = {len(fields)}"]
    lines += [f"local {name}_{field.upper()} = {i}" for i, field in enumerate(fields, 1)]
    return "\n".join(lines)


@cache
def constants() -> str:
    """`local NAME = value` for enum values, key names (keys.py) and task fields (field lists
    as tables, row layouts as index constants)."""
    lines = []
    for enum in (
        task_pb2.TaskState,
        task_pb2.ConcurrencyStrategy,
        event_pb2.EventType,
        agent_pb2.AgentState,
        stream_pb2.TaskOutcome,
        stream_pb2.OutputStream,
        workflow_pb2.WorkflowState,
        workflow_pb2.StepState,
        workflow_pb2.SignalTimeoutOutcome,
        schedule_pb2.OverlapPolicy,
    ):
        for name, number in enum.items():
            lines.append(f"local {name} = {number}")
    names = ", ".join(
        f"[{n}] = '{name.removeprefix('TASK_STATE_')}'" for name, n in task_pb2.TaskState.items()
    )
    lines.append(f"local TASK_STATE_NAMES = {{{names}}}")
    lines.append(f"local DEFAULT_TENANT = {DEFAULT_TENANT!r}")  # work stored without a tenant
    lines += [f"local {name} = {key!r}" for name, key in script_key_names().items()]
    lines += [lua_list(name, items) for name, items in lua_tables().items()]
    lines += [lua_row(name, fields) for name, fields in lua_rows().items()]
    return "\n".join(lines) + "\n"


_LOCAL = re.compile(r"local (\w+) =")
_WORD = re.compile(r"\b[A-Z][A-Z0-9_]*\b")


def used_constants(body: str) -> str:
    """The lines of constants() that `body` refers to: Lua allows a chunk at most 200 local
    variables, and the libraries a large script combines would pass that with every constant."""
    words = set(_WORD.findall(body))
    lines = constants().splitlines()
    return "\n".join(line for line in lines if _LOCAL.match(line).group(1) in words) + "\n"  # type: ignore[union-attr]


def script_source(path: Path, libs: tuple[Path, ...] = (), layouts: Layouts | None = None) -> str:
    """The constants it uses, the prelude, the script's layouts, any libraries, then the
    script body."""
    parts = [(_HERE / "prelude.lua").read_text()]
    parts += [lua_row(name, fields) for name, fields in (layouts or {}).items()]
    parts += [lib.read_text() for lib in libs]
    parts.append(path.read_text())
    body = "\n".join(parts)
    return used_constants(body) + body


def register(
    redis: Redis, path: Path, libs: tuple[Path, ...] = (), layouts: Layouts | None = None
) -> AsyncScript:
    """A script object that runs by SHA and reloads itself after a SCRIPT FLUSH or restart."""
    return redis.register_script(script_source(path, libs, layouts))


def register_common(redis: Redis, name: str) -> AsyncScript:
    """A script shared by several areas, kept here (`<name>.lua`, e.g. retention in expire.lua)."""
    return register(redis, _HERE / f"{name}.lua")


class Expire:
    """expire.lua, for one kind of record: its finished set, index, hash, state and per-tenant
    index prefixes, and
    the prefixes of keys deleted with each record (`companions`, e.g. a task's output stream)."""

    def __init__(
        self,
        redis: Redis,
        finished: str,
        index: str,
        hash_prefix: str,
        state_prefix: str,
        tenant_prefix: str,
        companions: tuple[str, ...] = (),
    ):
        self._script = register_common(redis, "expire")
        self._keys = [finished, index]
        self._prefixes = [hash_prefix, state_prefix]
        self._tenant_prefix = tenant_prefix
        self._companions = list(companions)

    async def __call__(self, cutoff_ms: int, limit: int) -> int:
        """Delete up to `limit` records that ended before the cutoff; returns how many."""
        args: list[str | int] = [
            *self._prefixes,
            cutoff_ms,
            limit,
            self._tenant_prefix,
            *self._companions,
        ]
        return int(await self._script(keys=self._keys, args=args))
