"""Scripts built on tasklib.lua and the shared KEYS/ARGV context they all take."""

from __future__ import annotations

from pathlib import Path

from redis.commands.core import AsyncScript

from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.config import CoordinatorSettings

_HERE = Path(__file__).parent
TASKLIB = _HERE / "tasklib.lua"
Arg = str | bytes | int | float


def register(redis: Redis, name: str) -> AsyncScript:
    """A coordinator script (`<name>.lua`) with tasklib.lua prepended."""
    return lua.register(redis, _HERE / f"{name}.lua", libs=(TASKLIB,))


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
