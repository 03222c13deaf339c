"""Attempt leases renewed by heartbeats: the tasks an agent names keep their lease."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

from hivewire.core.clock import now_ms
from hivewire_services.common import lua
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_id
from hivewire_services.registry.config import RegistrySettings

_HERE = Path(__file__).parent
MAX_RUNNING_IDS = 10_000


def check_running_ids(task_ids: Sequence[str]) -> list[str]:
    """Validate running_task_ids from a heartbeat (bounded, each a task id)."""
    if len(task_ids) > MAX_RUNNING_IDS:
        raise InvalidArgument(
            f"running_task_ids lists more than {MAX_RUNNING_IDS} tasks", field="running_task_ids"
        )
    for i, task_id in enumerate(task_ids):
        check_id(task_id, f"running_task_ids[{i}]")
    return list(dict.fromkeys(task_ids))


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
