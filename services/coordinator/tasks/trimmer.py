"""Stream trimming that never drops an unacknowledged entry.

Each stream is cut to about `maxlen` entries, but never at or past the oldest entry a consumer
group still needs: its oldest pending (read, unacknowledged) entry, or, with nothing pending,
the first entry after its last-delivered id. A stalled group therefore holds its stream; the
only other bound is the hard cap emit_event applies (10 x events_maxlen, see prelude.lua).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.config import CoordinatorSettings

logger = logging.getLogger(__name__)

# A pass comes this soon after one that found a stream at least half full, else after the
# longer pause: an idle deployment's streams do not grow, and the events stream is also hard
# capped where it is written.
TRIM_EVERY_S = 5.0
IDLE_TRIM_EVERY_S = 30.0
# Most entries looked at to find the maxlen cut in one step (the rest waits for the next pass).
SCAN_LIMIT = 10_000

StreamId = tuple[int, int]


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def after(sid: StreamId) -> StreamId:
    return sid[0], sid[1] + 1


class StreamTrimmer:
    """Trims the events, results and workflow-updates streams every few seconds (every half
    minute while they are far below their bounds)."""

    def __init__(self, redis: Redis, keys: Keys, settings: CoordinatorSettings) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.trimmed = 0

    def streams(self) -> list[tuple[str, int]]:
        cap = self.settings.events_maxlen
        return [
            (self.keys.events, cap),
            (self.keys.results, cap),
            (self.keys.workflow_updates, cap),
        ]

    async def run(self) -> None:
        backoff = Backoff()
        pause = TRIM_EVERY_S
        while True:
            await asyncio.sleep(pause)
            try:
                busy = await self.trim_all()
                pause = TRIM_EVERY_S if busy else IDLE_TRIM_EVERY_S
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = TRIM_EVERY_S
                await backoff.failed("stream trim", exc)

    async def trim_all(self) -> bool:
        """Trim every stream over its bound (one round trip when none is); True when one was
        at least half full."""
        streams = self.streams()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, _ in streams:
                pipe.xlen(key)
            lengths = cast(list[int], await pipe.execute())
        for (key, maxlen), length in zip(streams, lengths, strict=True):
            if length > maxlen:
                self.trimmed += await self.trim(key, maxlen)
        return any(
            length * 2 >= maxlen for (_, maxlen), length in zip(streams, lengths, strict=True)
        )

    async def floor(self, key: str) -> StreamId | None:
        """The oldest entry some consumer group still needs (None: no group needs any)."""
        groups: list[dict[str, Any]] = await self.redis.xinfo_groups(key)
        floor: StreamId | None = None
        for group in groups:
            if int(group["pending"]):
                summary: dict[str, Any] = await self.redis.xpending(key, group["name"])
                need = parse_id(summary["min"])
            else:
                need = after(parse_id(group["last-delivered-id"]))
            floor = need if floor is None else min(floor, need)
        return floor

    async def trim(self, key: str, maxlen: int) -> int:
        """Trim one stream; returns the number of entries removed."""
        excess = int(await self.redis.xlen(key)) - maxlen
        if excess <= 0:
            return 0
        rows = cast(
            list[tuple[bytes, Any]],
            await self.redis.xrange(key, "-", "+", count=min(excess, SCAN_LIMIT)),
        )
        if not rows:
            return 0
        cut = after(parse_id(rows[-1][0]))  # keep entries from here on
        floor = await self.floor(key)
        if floor is not None and floor < cut:
            cut = floor
        removed = int(await self.redis.xtrim(key, minid=f"{cut[0]}-{cut[1]}", approximate=False))
        if floor is not None and floor == cut and excess > removed:
            logger.warning(
                "%s is %d entries over its bound; a consumer group has not acknowledged them",
                key,
                excess - removed,
            )
        return removed
