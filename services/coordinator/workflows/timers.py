"""The workflow timer loop: fires sleep steps and signal timeouts when they are due.

Due times live in Redis (the `workflow_timers` sorted set, "<workflow>/<step>" by epoch ms),
so a sleep survives a coordinator restart: the loop's first pass at start fires what fell due
meanwhile. Between passes it sleeps on an Alarm set to the earliest due time, shortened when
the engine parks a step with an earlier one; `longest` bounds the sleep (a safety pass that
sees timers another coordinator set). Firing is atomic and idempotent (fire.lua), so several
coordinators may run the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from hivewire.core.clock import now_ms
from hivewire_services.common.alarm import Alarm
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis

logger = logging.getLogger(__name__)

BATCH = 100
Fire = Callable[[str, str], Awaitable[None]]


class WorkflowTimers:
    """Calls `fire(workflow_id, step_id)` for each timer that is due."""

    def __init__(self, redis: Redis, keys: Keys, fire: Fire, longest: float) -> None:
        self.redis = redis
        self.keys = keys
        self._fire = fire
        self.alarm = Alarm(longest)
        self.fired = 0

    def due_at(self, due: int | None) -> None:
        """A timer set here: wake for it if it is the earliest."""
        self.alarm.at(due)

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self.alarm.wait()
            try:
                await self.pass_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.alarm.now()
                await backoff.failed("workflow timers pass", exc)

    async def pass_once(self) -> None:
        """Fire every due timer (in batches), then set the alarm for the next one."""
        key = self.keys.workflow_timers
        while True:
            due = cast(list[bytes], await self.redis.zrangebyscore(key, "-inf", now_ms(), 0, BATCH))
            for member in due:
                workflow_id, _, step_id = member.decode().rpartition("/")
                try:
                    await self._fire(workflow_id, step_id)
                except REDIS_UNAVAILABLE:
                    raise
                except Exception:
                    logger.exception("workflow timer %s could not fire", member[:80])
                    await self.redis.zrem(key, member)
                self.fired += 1
            if len(due) < BATCH:
                break
        head = cast(list[tuple[bytes, float]], await self.redis.zrange(key, 0, 0, withscores=True))
        if head:
            self.alarm.at(int(head[0][1]))
