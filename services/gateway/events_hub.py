"""One shared reader of the events stream fanning out to bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import cast

from hivewire.v1 import event_pb2
from services.common.errors import HivewireError, InvalidArgument, ResourceExhausted, Unavailable
from services.common.events import decode_entry
from services.common.loops import cancel_and_wait
from services.common.metrics import DASHBOARD_OVERFLOWS
from services.common.redis import REDIS_UNAVAILABLE, Redis
from services.gateway.errors import OutOfRange

logger = logging.getLogger(__name__)

StreamId = tuple[int, int]
_Entry = tuple[bytes, dict[bytes, bytes]]
_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")


def parse_stream_id(value: str, field_name: str = "since_cursor") -> StreamId:
    """`<ms>-<seq>` as a comparable tuple; InvalidArgument naming `field_name` otherwise."""
    match = _STREAM_ID.fullmatch(value)
    if match is None:
        raise InvalidArgument(f"{field_name} must look like <ms>-<seq>", field=field_name)
    return int(match.group(1)), int(match.group(2))


def format_stream_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


@dataclass(frozen=True)
class EventFilter:
    """Every set criterion must match; empty strings and an empty type set match anything."""

    task_id: str = ""
    workflow_id: str = ""
    agent_id: str = ""
    capability: str = ""
    types: frozenset[int] = frozenset()

    def matches(self, event: event_pb2.Event) -> bool:
        return (
            (not self.task_id or event.task_id == self.task_id)
            and (not self.workflow_id or event.workflow_id == self.workflow_id)
            and (not self.agent_id or event.agent_id == self.agent_id)
            and (not self.capability or event.capability == self.capability)
            and (not self.types or event.type in self.types)
        )


_Item = tuple[StreamId, event_pb2.Event]


@dataclass(eq=False)
class Subscription:
    """One subscriber: a filter, a bounded queue the hub fills, and why it was cut off."""

    hub: EventsHub
    filter: EventFilter
    since: StreamId | None
    queue: asyncio.Queue[_Item | None]
    last_delivered: str = ""
    error: HivewireError | None = None
    _registered: bool = field(default=False, repr=False)

    async def open(self) -> None:
        """Check the cursor; a live subscriber (no cursor) is registered before this returns."""
        await self.hub.ready()
        if self.since is None:
            self.hub._register(self)
        else:
            await self.hub._check_not_trimmed(self.since)

    def close(self) -> None:
        self.hub._unregister(self)

    def _cut_off(self, error: HivewireError) -> None:
        self.error = error
        self.hub._unregister(self)
        if not self.queue.full():
            self.queue.put_nowait(None)  # wake a consumer blocked on an empty queue

    async def __aiter__(self) -> AsyncIterator[event_pb2.Event]:
        last: StreamId | None = self.since
        if last is not None:
            async for sid, event in self._catch_up(last):
                last = sid
                self.last_delivered = event.cursor
                yield event
        while True:
            item = await self.queue.get()
            if self.error is not None:
                raise self.error
            if item is None:
                continue
            sid, event = item
            if last is not None and sid <= last:
                continue  # already delivered by the catch-up read
            last = sid
            self.last_delivered = event.cursor
            yield event

    async def _catch_up(self, after: StreamId) -> AsyncIterator[_Item]:
        """Read history after `after` to the tail, register, then read up to the hub's position.

        Registering only near the tail keeps a long backlog from overflowing the live queue;
        the live queue then starts right after the hub position read in the same step.
        """
        last = after
        while True:
            page = await self.hub._range(last, None)
            for item in page:
                last = item[0]
                if self.filter.matches(item[1]):
                    yield item
            if len(page) < self.hub.count:
                break
        position = self.hub._register(self)
        while position is not None and last < position:
            page = await self.hub._range(last, position)
            for item in page:
                last = item[0]
                if self.filter.matches(item[1]):
                    yield item
            if len(page) < self.hub.count:
                break


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
    ) -> None:
        self.redis = redis
        self.key = key
        self.queue_size = queue_size
        self.count = count
        self.block_ms = block_ms
        self.max_backoff = max_backoff
        self.position: StreamId | None = None
        self._subscribers: set[Subscription] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def subscribe(self, flt: EventFilter, since: StreamId | None) -> Subscription:
        queue: asyncio.Queue[_Item | None] = asyncio.Queue(self.queue_size)
        return Subscription(self, flt, since, queue)

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
        first = cast(list[_Entry], await self.redis.xrange(self.key, min="-", max="+", count=1))
        if first and since < _sid(first[0][0]):
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


def _sid(entry_id: bytes | str) -> StreamId:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
