"""Scripts built on tasklib.lua and the shared KEYS/ARGV context they all take."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from redis.commands.core import AsyncScript

from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.config import CoordinatorSettings

_HERE = Path(__file__).parent
TASKCREATE = _HERE / "taskcreate.lua"
TASKLIB = _HERE / "tasklib.lua"
FLOWLIB = _HERE / "flowlib.lua"
FLOWGATE = _HERE / "flowgate.lua"
ASSIGNLIB = _HERE / "assignlib.lua"
PROMOTELIB = _HERE / "promotelib.lua"
Arg = str | bytes | int | float
REQUEST_ID_TTL_SECONDS = 24 * 3600
"""How long a request_id (of a task or a workflow) keeps yielding what it created."""


def register(
    redis: Redis,
    name: str,
    layouts: lua.Layouts | None = None,
    *,
    context: bool = True,
    extra: tuple[Path, ...] = (),
) -> AsyncScript:
    """A task script (`<name>.lua` here) with taskcreate.lua (and tasklib.lua, then `extra`
    libraries) prepended."""
    return register_path(redis, _HERE / f"{name}.lua", layouts, context=context, extra=extra)


def register_path(
    redis: Redis,
    path: Path,
    layouts: lua.Layouts | None = None,
    *,
    context: bool = True,
    extra: tuple[Path, ...] = (),
) -> AsyncScript:
    """A script anywhere (workflows create tasks too) with the task libraries prepended (only
    taskcreate.lua and `extra` without the tasklib context)."""
    libs = (TASKCREATE, FLOWLIB, TASKLIB, *extra) if context else (TASKCREATE, *extra)
    return lua.register(redis, path, libs=libs, layouts=layouts)


def context_keys(keys: Keys) -> list[str]:
    """KEYS[1..8] of every tasklib script (see tasklib.lua `context()`)."""
    return [
        keys.events,
        keys.agent_load,
        keys.finished,
        keys.dead_letters,
        keys.due,
        keys.task_leases,
        keys.attempt_deadlines,
        keys.start_deadlines,
    ]


def context_args(keys: Keys, settings: CoordinatorSettings, now: int) -> list[Arg]:
    """ARGV[1..7] of every tasklib script."""
    return [
        keys.prefix,
        now,
        settings.events_maxlen,
        int(settings.retry_initial_backoff * 1000),
        int(settings.retry_max_backoff * 1000),
        settings.dead_letters_maxlen,
        int(settings.task_lease_seconds * 1000),
    ]


def creation_keys(keys: Keys) -> list[str]:
    """KEYS[1..4] of every script that creates tasks (taskcreate.lua `create_task`)."""
    return [keys.events, keys.tasks_index, keys.task_seq, keys.start_deadlines]


def creation_args(keys: Keys, settings: CoordinatorSettings, now: int) -> list[Arg]:
    """ARGV[1..3] of every script that creates tasks."""
    return [keys.prefix, now, settings.events_maxlen]


def flatten(rows: Sequence[tuple[Any, ...]]) -> list[Arg]:
    """Fixed-width rows one after the other, as scripts read them (`ARGV[b + NAME_FIELD]`)."""
    return [value for row in rows for value in row]


class ContextScript:
    """A tasklib script: the wrapper subclass names the script and owns what follows the context."""

    name: ClassVar[str] = ""
    layouts: ClassVar[lua.Layouts] = {}
    extra: ClassVar[tuple[Path, ...]] = ()
    """Libraries prepended after tasklib.lua."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._script = register(redis, self.name, self.layouts, extra=self.extra)
        self._context_keys = context_keys(keys)

    async def call(self, now: int, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return await self._script(
            keys=[*self._context_keys, *keys],
            args=[*context_args(self.keys, self.settings, now), *args],
        )
