"""Attempt leases renewed by heartbeats: the tasks an agent names keep their lease."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from hivewire.core.clock import now_ms
from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.registry.config import RegistrySettings

_HERE = Path(__file__).parent


class TaskLeases:
    """Renews the attempt leases of an agent's running tasks; says which to cancel."""

    def __init__(self, redis: Redis, keys: Keys, settings: RegistrySettings) -> None:
        self._keys = keys
        self._settings = settings
        self._renew = lua.register(redis, _HERE / "renew.lua")

    async def renew(self, agent_id: str, task_ids: Sequence[str]) -> list[str]:
        """Call only after the agent's token was checked (by its heartbeat)."""
        if not task_ids:
            return []
        raw = await self._renew(
            keys=[self._keys.task_leases],
            args=[
                self._keys.prefix,
                agent_id,
                now_ms(),
                int(self._settings.task_lease_seconds * 1000),
                *task_ids,
            ],
        )
        return [r.decode() for r in cast(list[bytes], raw)]
