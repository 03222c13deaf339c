"""The events stream for dashboards: one shared reader, bounded and resumable subscriptions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Unpack, cast

from redis.exceptions import ResponseError

from hivewire.v1 import event_pb2
from hivewire_services.common.errors import HivewireError, ResourceExhausted, Unavailable
from hivewire_services.common.events import decode_entry
from hivewire_services.common.fanout import FanoutHub, FanoutUser, ReadOptions, Subscriber
from hivewire_services.common.metrics import DASHBOARD_OVERFLOWS
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry
from hivewire_services.common.validation import MAX_STREAM_ID_PART
from hivewire_services.gateway.errors import OutOfRange
from hivewire_services.gateway.events.filter import (
    EventFilter,
    StreamId,
    format_stream_id,
    parse_stream_id,
    sid,
)

__all__ = [
    "EventFilter",
    "EventsHub",
    "StreamId",
    "Subscription",
    "format_stream_id",
    "parse_stream_id",
]

logger = logging.getLogger(__name__)

_Item = tuple[StreamId, event_pb2.Event]
LAST_STREAM_ID = (MAX_STREAM_ID_PART, MAX_STREAM_ID_PART)
# With no StreamEvents subscriber only the stats counters listen: they count per second, so
# the hub reads at most about ten times a second instead of once per event (issue 13).
LISTENER_PACE_S = 0.1


class EventsHub(FanoutUser[_Item]):
    """Tails the events stream once per gateway (a FanoutHub) for every StreamEvents call.

    A subscriber whose queue is full is cut off (RESOURCE_EXHAUSTED with its last delivered
    cursor) so it can never slow the reader or other subscribers; a stop ends each with
    UNAVAILABLE and its cursor, to resume elsewhere.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        queue_size: int,
        *,
        max_subscribers: int = 1000,
        **options: Unpack[ReadOptions],
    ) -> None:
        options.setdefault("listener_pace", LISTENER_PACE_S)
        fanout = FanoutHub[_Item](
            redis,
            key,
            _decode,
            service="gateway",
            max_subscribers=max_subscribers,
            on_overflow=DASHBOARD_OVERFLOWS.inc,
            **options,
        )
        super().__init__(fanout, queue_size)
        self.redis = redis
        self.key = key
        self.count = fanout.count

    @property
    def position(self) -> StreamId | None:
        """The id of the last entry read (None before the first read)."""
        raw = self._fanout.position
        return None if raw is None else sid(raw)

    @property
    def subscriber_count(self) -> int:
        return self._fanout.subscriber_count

    def subscribe(self, flt: EventFilter, since: StreamId | None) -> Subscription:
        return Subscription(self, flt, since)

    def add_listener(self, listener: Callable[[event_pb2.Event], None]) -> None:
        """Call `listener` (synchronously, it must not block) with every event read."""
        self._fanout.add_listener(lambda item: listener(item[1]))

    async def ready(self) -> None:
        await self._fanout.ready()

    def register(self, sub: Subscription) -> StreamId | None:
        """Start live delivery to `sub`; the position after which it receives events."""
        raw = self._fanout.register(sub)
        return None if raw is None else sid(raw)

    async def range(self, after: StreamId, upto: StreamId | None) -> list[_Item]:
        """Up to `count` events after `after` (to `upto`, else to the end), from history."""
        if after == LAST_STREAM_ID:
            return []  # nothing can follow it, and Redis refuses an exclusive start there
        rows = cast(
            list[Entry],
            await self.redis.xrange(
                self.key,
                min="(" + format_stream_id(after),
                max="+" if upto is None else format_stream_id(upto),
                count=self.count,
            ),
        )
        return [(sid(entry_id), decode_entry(entry_id, fields)) for entry_id, fields in rows]

    async def check_not_trimmed(self, since: StreamId) -> None:
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
        if not first or since >= sid(first[0]):
            return
        added = info.get("entries-added")
        ever_removed = int(added) > int(info.get("length", 0)) if added is not None else None
        if ever_removed or (ever_removed is None and since != (0, 0)):
            raise OutOfRange(
                f"since_cursor {format_stream_id(since)} is older than the oldest event kept",
                reason="CURSOR_TRIMMED",
                field="since_cursor",
            )


async def _decode(entries: list[Entry]) -> list[_Item]:
    items: list[_Item] = []
    for entry_id, fields in entries:
        try:
            items.append((sid(entry_id), decode_entry(entry_id, fields)))
        except Exception:
            logger.exception("events hub: skipping undecodable entry %s", entry_id)
    return items


class Subscription(Subscriber[_Item]):
    """One StreamEvents call: a filter, a bounded live queue, catch-up from a cursor."""

    def __init__(self, hub: EventsHub, flt: EventFilter, since: StreamId | None) -> None:
        super().__init__(hub.queue_size)
        self.hub = hub
        self.filter = flt
        self.since = since
        self.last_delivered = ""

    def accepts(self, item: _Item) -> bool:
        return self.filter.matches(item[1])

    def overflow_error(self) -> HivewireError:
        return ResourceExhausted(
            f"subscriber too slow; resume from cursor {self.last_delivered or '(none)'}",
            reason="SUBSCRIBER_TOO_SLOW",
            metadata={"cursor": self.last_delivered},
        )

    def shutdown_error(self, service: str) -> HivewireError:
        return Unavailable(
            f"{service} is shutting down; resume from the last cursor",
            reason="SHUTTING_DOWN",
            metadata={"cursor": self.last_delivered},
        )

    async def open(self) -> None:
        """Check the cursor; a live subscriber (no cursor) is registered before this returns."""
        await self.hub.ready()
        if self.since is None:
            position = self.hub.register(self)
            # Nothing delivered yet: resuming from the registration point loses nothing.
            self.last_delivered = format_stream_id(position) if position else ""
        else:
            await self.hub.check_not_trimmed(self.since)
            self.last_delivered = format_stream_id(self.since)

    def close(self) -> None:
        self.hub.unregister(self)

    async def __aiter__(self) -> AsyncIterator[event_pb2.Event]:
        async for batch in self.batches(None, 1):
            for event in batch or ():
                yield event

    async def batches(
        self, idle: float | None, limit: int
    ) -> AsyncIterator[list[event_pb2.Event] | None]:
        """Events after the start point, up to `limit` at a time when several are waiting
        (never waiting to fill a batch); None each time nothing arrived for `idle` seconds."""
        last: StreamId | None = self.since
        if last is not None:
            batch: list[event_pb2.Event] = []
            async for sid, event in self._catch_up(last):
                last = sid
                batch.append(event)
                if len(batch) >= limit:
                    self.last_delivered = batch[-1].cursor
                    yield batch
                    batch = []
            if batch:
                self.last_delivered = batch[-1].cursor
                yield batch
        while True:
            try:
                # A busy stream takes what is queued without waiting; wait_for (a task per
                # call) only when the queue is empty.
                item = (
                    self.queue.get_nowait()
                    if not self.queue.empty()
                    else await asyncio.wait_for(self.queue.get(), idle)
                )
            except TimeoutError:
                if self.error is not None:
                    raise self.error from None
                yield None
                continue
            if self.error is not None:
                raise self.error
            batch = []
            # No await below: the hub cannot cut this subscriber off while the batch forms.
            while True:
                if item is not None and (last is None or item[0] > last):
                    last = item[0]  # older ones were already delivered by the catch-up read
                    batch.append(item[1])
                if len(batch) >= limit or self.queue.empty():
                    break
                item = self.queue.get_nowait()
            if batch:
                self.last_delivered = batch[-1].cursor
                yield batch

    async def _catch_up(self, after: StreamId) -> AsyncIterator[_Item]:
        """Read history after `after` to the tail, register, then read up to the hub's position.

        Registering only near the tail keeps a long backlog from overflowing the live queue;
        the live queue then starts right after the hub position read in the same step.
        """
        last = after
        async for item in self._history(after, None):
            last = item[0]
            if self.filter.matches(item[1]):
                yield item
        position = self.hub.register(self)
        if position is not None:
            async for item in self._history(last, position):
                if self.filter.matches(item[1]):
                    yield item

    async def _history(self, after: StreamId, upto: StreamId | None) -> AsyncIterator[_Item]:
        """Every event after `after` up to `upto` (the end when None), a page at a time."""
        while upto is None or after < upto:
            page = await self.hub.range(after, upto)
            for item in page:
                after = item[0]
                yield item
            if len(page) < self.hub.count:
                return
