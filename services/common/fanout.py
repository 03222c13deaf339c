"""One shared reader of a stream fanning out to bounded per-subscriber queues."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypedDict, TypeVar, cast

from hivewire.core.background import cancel_and_wait
from hivewire_services.common.errors import HivewireError, ResourceExhausted, Unavailable
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis, blocking_reads, close_quietly
from hivewire_services.common.streams import BLOCK_MS, Entry

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Subscriber(Generic[T]):
    """A bounded queue the hub fills without waiting, ended with an error when cut off.

    Subclasses choose what they accept and the errors that end them.
    """

    def __init__(self, maxsize: int) -> None:
        # None wakes a reader blocked on an empty queue once `error` is set.
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(max(1, maxsize))
        self.error: HivewireError | None = None

    @property
    def ended(self) -> bool:
        return self.error is not None

    def accepts(self, item: T) -> bool:
        return True

    def overflow_error(self) -> HivewireError:
        return ResourceExhausted("subscriber fell behind; subscribe again", reason="QUEUE_FULL")

    def shutdown_error(self, service: str) -> HivewireError:
        return Unavailable(f"{service} is shutting down", reason="SHUTTING_DOWN")

    def offer(self, item: T) -> bool:
        """Queue an item without waiting; False when the queue is full (or already ended)."""
        if self.error is not None:
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            return False
        return True

    def end(self, error: HivewireError) -> None:
        """Drop what is queued and make the next get() raise `error`."""
        if self.error is not None:
            return
        self.error = error
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def get(self) -> T:
        item = await self.queue.get()
        if item is None or self.error is not None:
            assert self.error is not None
            raise self.error
        return item


class ReadOptions(TypedDict, total=False):
    """How a FanoutHub reads, as its users pass it on; what is left out takes its default."""

    count: int
    block_ms: int
    max_backoff: float
    listener_pace: float


class FanoutHub(Generic[T]):
    """Tails one stream with XREAD BLOCK from its end and offers each item to every subscriber.

    `convert` turns a batch of entries into items (it may read Redis); the position moves past
    a batch only once it is dispatched, so a failed conversion is read again. Dispatch never
    awaits: a subscriber whose queue is full is cut off with its `overflow_error()`, so it can
    never slow the reader or the others.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        convert: Callable[[list[Entry]], Awaitable[list[T]]],
        *,
        service: str,
        count: int = 512,
        block_ms: int = BLOCK_MS,
        max_backoff: float = 5.0,
        max_subscribers: int | None = None,
        on_overflow: Callable[[], None] | None = None,
        listener_pace: float = 0.0,
    ) -> None:
        self.redis = redis
        self.key = key
        self.service = service
        self.count = count
        self.block_ms = block_ms
        self.max_backoff = max_backoff
        self.max_subscribers = max_subscribers
        self.position: bytes | None = None
        self._convert = convert
        self._on_overflow = on_overflow
        self._subscribers: set[Subscriber[T]] = set()
        self._listeners: list[Callable[[T], None]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        # With listeners only (no subscriber waiting for each item), a read that found items
        # is followed by this pause (cut short by a subscriber registering), so a busy stream
        # costs a few reads a second instead of one per wake-up.
        self.listener_pace = listener_pace
        self._subscribed = asyncio.Event()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def add_listener(self, listener: Callable[[T], None]) -> None:
        """Call `listener` (synchronously, it must not block) with every item read."""
        self._listeners.append(listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.service}-fanout")

    async def stop(self) -> None:
        """Stop reading and end every subscriber with its shutdown error (they resume elsewhere)."""
        self._stopped = True
        # redis-py can swallow a cancel inside a read; cancel_and_wait cancels again, and the
        # loop also checks `_stopped` after its first read.
        await cancel_and_wait([self._task])
        self._task = None
        for sub in list(self._subscribers):
            sub.end(sub.shutdown_error(self.service))
        self._subscribers.clear()
        self._ready.set()  # release anyone still waiting for the first read

    async def ready(self, within: float | None = None) -> None:
        """Wait until the reader knows its position (UNAVAILABLE after `within` s or a stop)."""
        try:
            await asyncio.wait_for(self._ready.wait(), within)
        except TimeoutError:
            raise Unavailable(
                f"{self.service}: the stream is not readable yet", reason="REDIS_UNAVAILABLE"
            ) from None
        if self._stopped:
            raise Unavailable(f"{self.service} is shutting down", reason="SHUTTING_DOWN")

    def register(self, sub: Subscriber[T]) -> bytes | None:
        """Start offering items to `sub`; the position after which it gets them."""
        if self._stopped:
            raise Unavailable(f"{self.service} is shutting down", reason="SHUTTING_DOWN")
        limit = self.max_subscribers
        if sub not in self._subscribers and limit is not None and len(self._subscribers) >= limit:
            raise ResourceExhausted(
                f"this {self.service} already serves {limit} streams",
                reason="TOO_MANY_SUBSCRIBERS",
            )
        self._subscribers.add(sub)
        self._subscribed.set()
        return self.position

    def unregister(self, sub: Subscriber[T]) -> None:
        self._subscribers.discard(sub)

    async def _run(self) -> None:
        # A connection of its own: idle, the read blocks for `block_ms` at a time.
        reads = blocking_reads(self.redis, self.block_ms / 1000)
        try:
            await self._tail(reads)
        finally:
            await close_quietly(reads)

    async def _tail(self, reads: Redis) -> None:
        backoff = Backoff(cap=self.max_backoff)
        while not self._stopped:
            try:
                if self.position is None:
                    last = cast(list[Any], await self.redis.xrevrange(self.key, count=1))
                    self.position = bytes(last[0][0]) if last else b"0-0"
                    self._ready.set()
                    continue  # re-check `_stopped`: a stop's cancel may have been swallowed
                reply = cast(
                    list[tuple[bytes, list[Entry]]] | None,
                    await reads.xread(
                        {self.key: self.position}, count=self.count, block=self.block_ms
                    ),
                )
                for _key, entries in reply or ():
                    if self._subscribers or self._listeners:
                        self._dispatch(await self._convert(entries))
                    self.position = entries[-1][0]
                backoff.reset()
                full = any(len(entries) >= self.count for _key, entries in reply or ())
                if reply and not full and self.listener_pace and not self._subscribers:
                    await self._pace()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await backoff.failed(f"{self.service} fan-out of {self.key}", exc)

    async def _pace(self) -> None:
        self._subscribed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), self.listener_pace)

    def _dispatch(self, items: list[T]) -> None:
        for item in items:
            for listener in self._listeners:
                try:
                    listener(item)
                except Exception:
                    logger.exception("%s: a listener failed", self.service)
            for sub in list(self._subscribers):
                if sub.accepts(item) and not sub.offer(item):
                    self._subscribers.discard(sub)
                    sub.end(sub.overflow_error())
                    if self._on_overflow is not None:
                        self._on_overflow()


class FanoutUser(Generic[T]):
    """What a service's hub is built on: one FanoutHub and the size of each subscriber's queue.

    The service's hub adds how its subscribers subscribe; starting, stopping (every
    subscription then ends with its shutdown error) and unsubscribing are the same for all.
    """

    def __init__(self, fanout: FanoutHub[T], queue_size: int) -> None:
        self._fanout = fanout
        self.queue_size = queue_size

    def start(self) -> None:
        self._fanout.start()

    async def stop(self) -> None:
        await self._fanout.stop()

    def unregister(self, sub: Subscriber[T]) -> None:
        self._fanout.unregister(sub)
