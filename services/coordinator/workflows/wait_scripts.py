"""Typed calls of the scripts for steps that wait (park, signal, fire) and for RetryWorkflow."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from hivewire.v1 import workflow_pb2
from hivewire_services.common import lua
from hivewire_services.common.alarm import due_ms
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks.tasklua import Arg
from hivewire_services.coordinator.workflows.plan import Park

_HERE = Path(__file__).parent


class WaitScripts:
    """park.lua, signal.lua, fire.lua and retry.lua for one namespace."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.keys = keys
        self.settings = settings
        self._park = lua.register(redis, _HERE / "park.lua")
        self._signal = lua.register(redis, _HERE / "signal.lua")
        self._fire = lua.register(redis, _HERE / "fire.lua")
        self._retry = lua.register(redis, _HERE / "retry.lua")
        self.running_index = keys.workflows_by_state(workflow_pb2.WORKFLOW_STATE_RUNNING)

    def _keys(self, workflow_id: str) -> list[str]:
        return [self.keys.workflow(workflow_id), self.keys.workflow_timers, self.keys.events]

    async def park(self, now: int, workflow_id: str, parks: list[Park]) -> int | None:
        """Apply the parks; the earliest wake time set (None: none)."""
        args: list[Arg] = [now, self.settings.events_maxlen, workflow_id, len(parks)]
        for p in parks:
            args += [p.step_id, p.state, p.wait_ms]
        return due_ms(await self._park(keys=self._keys(workflow_id), args=args))

    async def signal(
        self, now: int, workflow_id: str, step_id: str, payload: bytes, signalled_by: str
    ) -> tuple[int, int]:
        """(code, state): see signal.lua."""
        args: list[Arg] = [
            now, self.settings.events_maxlen, workflow_id, step_id, payload, signalled_by,
        ]  # fmt: skip
        got = cast(list[int], await self._signal(keys=self._keys(workflow_id), args=args))
        return int(got[0]), int(got[1])

    async def fire(
        self, now: int, workflow_id: str, step_id: str, outcome: int, output: str, wait_ms: int
    ) -> bool:
        """Whether the due timer changed its step (see fire.lua)."""
        args: list[Arg] = [
            now, self.settings.events_maxlen, workflow_id, step_id, outcome, output, wait_ms,
        ]  # fmt: skip
        return bool(await self._fire(keys=self._keys(workflow_id), args=args))

    async def retry(self, now: int, workflow_id: str) -> tuple[int, int]:
        """(state before, steps reset): see retry.lua."""
        keys = [
            self.keys.workflow(workflow_id),
            self.keys.events,
            self.running_index,
            self.keys.workflows_finished,
            self.keys.workflow_timers,
        ]
        args: list[Arg] = [self.keys.prefix, now, self.settings.events_maxlen, workflow_id]
        got = cast(list[int], await self._retry(keys=keys, args=args))
        return int(got[0]), int(got[1])
