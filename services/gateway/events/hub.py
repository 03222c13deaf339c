"""One shared reader of the events stream fanning out to bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Collection
from typing import Any, cast

from redis.exceptions import ResponseError

from hivewire.v1 import event_pb2
from hivewire_services.common.errors import ResourceExhausted, Unavailable
from hivewire_services.common.events import decode_entry
from hivewire_services.common.loops import cancel_and_wait
from hivewire_services.common.metrics import DASHBOARD_OVERFLOWS
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis
from hivewire_services.gateway.errors import OutOfRange
from hivewire_services.gateway.events.filter import (
    EventFilter,
    StreamId,
    format_stream_id,
    parse_stream_id,
)
from hivewire_services.gateway.events.filter import sid as _sid
from hivewire_services.gateway.events.subscription import Subscription, _Item

__all__ = [
    "EventFilter",
    "EventsHub",
    "StreamId",
    "Subscription",
    "format_stream_id",
    "parse_stream_id",
]

logger = logging.getLogger(__name__)

_Entry = tuple[bytes, dict[bytes, bytes]]


class EventsHub:
    """Tails the events stream with one XREAD BLOCK loop and fans entries out to subscribers.

    Dispatch never awaits: a subscriber whose queue is full is cut off (RESOURCE_EXHAUSTED with
    its last delivered cursor) so it can never slow the reader or other subscribers.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        queue_size: int,
        *,
        count: int = 512,
        block_ms: int = 1000,
        max_backoff: float = 5.0,
        max_subscribers: int = 1000,
    ) -> None:
        self.redis = redis
        self.key = key
        self.queue_size = queue_size
        self.count = count
        self.block_ms = block_ms
        self.max_backoff = max_backoff
        self.max_subscribers = max_subscribers
        self.position: StreamId | None = None
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Callable[[event_pb2.Event], None]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def subscribe(self, flt: EventFilter, since: StreamId | None) -> Subscription:
        queue: asyncio.Queue[_Item | None] = asyncio.Queue(self.queue_size)
        return Subscription(self, flt, since, queue)

    def add_listener(self, listener: Callable[[event_pb2.Event], None]) -> None:
        """Call `listener` (synchronously, it must not block) with every event read."""
        self._listeners.append(listener)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="events-hub")

    async def stop(self) -> None:
        """Stop reading and end every subscription with UNAVAILABLE (they resume elsewhere)."""
        self._stopped = True
        if self._task is not None:
            # A cancel that lands inside redis-py's read can be swallowed (its read timeout turns
            # it into a retried TimeoutError), so cancel again until the reader has ended; the
            # loop also checks `_stopped` after each read.
            await cancel_and_wait([self._task])
            self._task = None
        for sub in list(self._subscribers):
            sub._cut_off(
                Unavailable(
                    "gateway is shutting down; resume from the last cursor",
                    reason="SHUTTING_DOWN",
                    metadata={"cursor": sub.last_delivered},
                )
            )
        self._ready.set()  # release anyone still waiting for the first read

    async def ready(self) -> None:
        await self._ready.wait()
        if self._stopped:
            raise Unavailable("gateway is shutting down", reason="SHUTTING_DOWN")

    def _register(self, sub: Subscription) -> StreamId | None:
        if self._stopped:
            raise Unavailable("gateway is shutting down", reason="SHUTTING_DOWN")
        if sub not in self._subscribers and len(self._subscribers) >= self.max_subscribers:
            raise ResourceExhausted(
                f"this gateway already serves {self.max_subscribers} event streams",
                reason="TOO_MANY_SUBSCRIBERS",
            )
        self._subscribers.add(sub)
        return self.position

    def _unregister(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    async def _range(self, after: StreamId, upto: StreamId | None) -> list[_Item]:
        rows = cast(
            list[_Entry],
            await self.redis.xrange(
                self.key,
                min="(" + format_stream_id(after),
                max="+" if upto is None else format_stream_id(upto),
                count=self.count,
            ),
        )
        return [(_sid(entry_id), decode_entry(entry_id, fields)) for entry_id, fields in rows]

    async def _check_not_trimmed(self, since: StreamId) -> None:
        """OutOfRange when an entry after `since` may have been trimmed away.

        Entries older than the first one kept are gone only if any entry was ever removed:
        Redis 7 counts the entries ever added; older servers cannot tell, so there a cursor
        before the first entry counts as trimmed unless it is the very start (0-0).
        """
        try:
            info = cast(dict[Any, Any], await self.redis.xinfo_stream(self.key))
        except ResponseError:
            return  # no stream yet: nothing was ever trimmed
        first = info.get("first-entry")
        if not first or since >= _sid(first[0]):
            return
        added = info.get("entries-added")
        ever_removed = int(added) > int(info.get("length", 0)) if added is not None else None
        if ever_removed or (ever_removed is None and since != (0, 0)):
            raise OutOfRange(
                f"since_cursor {format_stream_id(since)} is older than the oldest event kept",
                reason="CURSOR_TRIMMED",
                field="since_cursor",
            )

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopped:
            try:
                if self.position is None:
                    last = cast(
                        list[_Entry],
                        await self.redis.xrevrange(self.key, max="+", min="-", count=1),
                    )
                    self.position = _sid(last[0][0]) if last else (0, 0)
                    self._ready.set()
                    if self._stopped:
                        break  # the stop's cancel was swallowed by redis-py (see stop())
                reply = cast(
                    list[tuple[bytes, list[_Entry]]] | None,
                    await self.redis.xread(
                        {self.key: format_stream_id(self.position)},
                        count=self.count,
                        block=self.block_ms,
                    ),
                )
                backoff = 0.05
                for _key, entries in reply or ():
                    self._dispatch(entries)
            except asyncio.CancelledError:
                raise
            except REDIS_UNAVAILABLE as exc:
                logger.warning(
                    "events hub: redis unavailable (%s), retrying in %.2fs", exc, backoff
                )
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, self.max_backoff)
            except Exception:
                logger.exception("events hub: unexpected error, retrying in %.2fs", backoff)
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(backoff * 2, self.max_backoff)

    def _dispatch(self, entries: Collection[_Entry]) -> None:
        for entry_id, fields in entries:
            sid = _sid(entry_id)
            self.position = sid
            try:
                event = decode_entry(entry_id, fields)
            except Exception:
                logger.exception("events hub: skipping undecodable entry %s", entry_id)
                continue
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("events hub: listener failed on %s", entry_id)
            for sub in list(self._subscribers):
                if not sub.filter.matches(event):
                    continue
                try:
                    sub.queue.put_nowait((sid, event))
                except asyncio.QueueFull:
                    DASHBOARD_OVERFLOWS.inc()
                    sub._cut_off(
                        ResourceExhausted(
                            "subscriber too slow; resume from cursor "
                            f"{sub.last_delivered or '(none)'}",
                            reason="SUBSCRIBER_TOO_SLOW",
                            metadata={"cursor": sub.last_delivered},
                        )
                    )
