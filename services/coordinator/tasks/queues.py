"""Operator controls over capability queues: pause, resume, and list them with their depth."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import cast

from hivewire.core.clock import now_ms
from hivewire.v1 import operator_pb2
from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_capability
from hivewire_services.coordinator.config import CoordinatorSettings

_HERE = Path(__file__).parent
MAX_QUEUES = 1000
"""ListQueues shows at most this many capabilities (a bound on one reply)."""


def _queue(capability: str, since_ms: int, pending: int) -> operator_pb2.Queue:
    queue = operator_pb2.Queue(capability=capability, paused=since_ms >= 0, pending=pending)
    if since_ms >= 0:
        queue.pause_time.FromMilliseconds(since_ms)
    return queue


class Queues:
    """Paused flags live in one hash (keys.paused_queues) that every scheduler pass reads, so a
    pause holds on every coordinator; `on_resumed` wakes this coordinator's scheduler."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        known: Callable[[], Iterable[str]],
        on_resumed: Callable[[], None],
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._known = known  # capabilities live agents offer
        self._on_resumed = on_resumed
        self._script = lua.register(redis, _HERE / "pause.lua")

    async def _set(self, capability: str, paused: bool) -> operator_pb2.Queue:
        check_capability(capability)
        since = await self._script(
            keys=[self.keys.paused_queues, self.keys.events],
            args=[capability, now_ms(), "1" if paused else "0", self.settings.events_maxlen],
        )
        pending = await self.redis.zcard(self.keys.pending(capability))
        return _queue(capability, int(since), int(pending))

    async def pause(self, capability: str) -> operator_pb2.Queue:
        return await self._set(capability, True)

    async def resume(self, capability: str) -> operator_pb2.Queue:
        queue = await self._set(capability, False)
        self._on_resumed()
        return queue

    async def list(self) -> list[operator_pb2.Queue]:
        """Queues of the capabilities live agents offer, workflows used, or an operator
        paused, by capability (at most MAX_QUEUES)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.paused_queues)
            pipe.smembers(self.keys.pending_capabilities)
            raw_paused, raw_used = await pipe.execute()
        paused = {k.decode(): int(v) for k, v in cast(dict[bytes, bytes], raw_paused).items()}
        caps = set(self._known()) | {c.decode() for c in cast(set[bytes], raw_used)}
        names = sorted(caps | set(paused))[:MAX_QUEUES]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cap in names:
                pipe.zcard(self.keys.pending(cap))
            depths = await pipe.execute()
        return [
            _queue(cap, paused.get(cap, -1), int(n)) for cap, n in zip(names, depths, strict=True)
        ]
