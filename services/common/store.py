"""The base of the Redis-backed stores: their client, key names, settings and Lua scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

from redis.commands.core import AsyncScript

from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis

SettingsT = TypeVar("SettingsT")


class RedisStore(Generic[SettingsT]):
    """Reads and writes one part of the Redis layout. Knows nothing of gRPC."""

    def __init__(self, redis: Redis, keys: Keys, settings: SettingsT) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings

    def scripts(self, folder: Path, *names: str, libs: tuple[Path, ...] = ()) -> list[AsyncScript]:
        """The scripts `<folder>/<name>.lua` (each after `libs`), registered once, called by SHA."""
        return [lua.register(self.redis, folder / f"{name}.lua", libs) for name in names]
