"""One Redis Streams consumer-group reader: every consumer loop is a `handle(entries)` on it."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from redis.exceptions import ResponseError

from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis, blocking_reads, close_quietly

logger = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
Handler = Callable[[list[Entry]], Awaitable[None]]
# Periodic work of a reader's owner: runs between reads, returns the seconds until it next has
# work (None: no periodic work), so the read blocks no longer than that.
BeforeRead = Callable[[], Awaitable[float | None]]

# Longest pause between XAUTOCLAIM passes, whatever the idle time: a dead consumer's entries
# should not wait much longer than their idle time to be taken over.
MAX_CLAIM_EVERY = 10.0
MIN_CLAIM_EVERY = 0.05
# The longest BLOCK of one read: an idle reader wakes only this often (or for its claims and
# its owner's periodic work), on a connection of its own that waits that long.
BLOCK_MS = 30_000


@dataclass(frozen=True)
class GroupOptions:
    """Where and how a `GroupReader` reads.

    `claim_idle` (seconds): entries pending that long with any consumer are taken over with
    XAUTOCLAIM; None never claims. `block_ms` bounds one blocking read. `start_id` is where a
    group created here starts ("0": the whole stream, "$": new entries only). With `ack` the
    reader acknowledges a batch once `handle` has returned; without it `handle` acknowledges
    (typically in the same Lua call that stores the effect). With `create` the reader owns the
    group: it creates it (MKSTREAM) and re-creates it when Redis lost it; without, a missing
    group means nothing to read.
    """

    stream: str
    group: str
    consumer: str
    batch: int = 256
    block_ms: int = BLOCK_MS
    claim_idle: float | None = None
    claim_every: float | None = None
    start_id: str = "0"
    ack: bool = False
    create: bool = True

    @property
    def claim_interval(self) -> float | None:
        """Seconds between XAUTOCLAIM passes (half the idle time, within bounds)."""
        if self.claim_idle is None:
            return None
        if self.claim_every is not None:
            return self.claim_every
        return min(MAX_CLAIM_EVERY, max(MIN_CLAIM_EVERY, self.claim_idle / 2))


def is_busygroup(exc: ResponseError) -> bool:
    return str(exc).startswith("BUSYGROUP")


async def ensure_group(redis: Redis, stream: str, group: str, start_id: str = "0") -> None:
    """Create a consumer group (and its stream); one that already exists is fine.

    Only BUSYGROUP is expected: any other error (wrong type, no rights) is the caller's.
    """
    try:
        await redis.xgroup_create(stream, group, id=start_id, mkstream=True)
    except ResponseError as exc:
        if not is_busygroup(exc):
            raise


async def ack_and_delete(redis: Redis, stream: str, group: str, entry_ids: Sequence[bytes]) -> None:
    """XACK and XDEL handled entries in one MULTI: a process killed between the two would leave
    entries acknowledged yet never deleted, which no consumer reads again."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(stream, group, *entry_ids)
        pipe.xdel(stream, *entry_ids)
        await pipe.execute()


def is_nogroup(exc: ResponseError) -> bool:
    return str(exc).startswith("NOGROUP")


def read_entries(reply: Any) -> list[Entry]:
    """The entries of an XREADGROUP reply (one stream; None when the block timed out)."""
    return [entry for _, entries in cast(Sequence[Any], reply or ()) for entry in entries]


def claim_reply(reply: Sequence[Any]) -> tuple[bytes | str, list[Entry], list[bytes]]:
    """(next cursor, claimed entries, ids already deleted) of an XAUTOCLAIM reply."""
    deleted = cast(list[bytes], reply[2]) if len(reply) > 2 else []
    return reply[0], cast(list[Entry], reply[1]), deleted


def claim_done(cursor: bytes | str) -> bool:
    return cursor in (b"0-0", "0-0")


class GroupReader:
    """Reads a stream through a consumer group and passes each batch to `handle`.

    `run()` creates the group, then forever: takes over abandoned entries every
    `claim_interval`, blocks in XREADGROUP for up to `batch` new entries (fewer when
    `capacity` says so) until the next claim or periodic work is due, hands them to `handle`,
    and acknowledges them if asked to. An entry is never acknowledged before `handle`
    returned, so a failing handler leaves it pending to be claimed again. Errors back off
    (capped, jittered); cancellation ends it at once.
    """

    def __init__(
        self,
        redis: Redis,
        options: GroupOptions,
        handle: Handler,
        *,
        name: str,
        capacity: Callable[[], Awaitable[int]] | None = None,
        before_read: BeforeRead | None = None,
        trimmed: Callable[[list[bytes]], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.options = options
        self.name = name
        self._handle = handle
        # Awaited before each read: how many entries may be read now (it waits while 0).
        self._capacity = capacity
        # Periodic work of the loop's owner, run between reads (a sweep, an expiry).
        self._before_read = before_read
        # Told the ids of pending entries XAUTOCLAIM found deleted (trimmed) before they are acked.
        self._trimmed = trimmed

    async def ensure_group(self) -> None:
        opts = self.options
        await ensure_group(self.redis, opts.stream, opts.group, opts.start_id)

    async def read_once(
        self, *, block: bool = True, block_ms: int | None = None, reads: Redis | None = None
    ) -> int:
        """Read and handle one batch of new entries, blocking (unless `block` is false) up to
        `block_ms` (default the options') on `reads` (a client whose socket timeout outlasts
        the block; the reader's own client by default); how many there were."""
        opts = self.options
        count = opts.batch
        if self._capacity is not None:
            count = min(count, await self._capacity())
        wait = max(1, opts.block_ms if block_ms is None else block_ms)  # BLOCK 0: for ever
        reply = await (reads or self.redis).xreadgroup(
            opts.group,
            opts.consumer,
            {opts.stream: ">"},
            count=count,
            block=wait if block else None,
        )
        entries = read_entries(reply)
        if entries:
            await self._deliver(entries)
        return len(entries)

    async def claim_once(self) -> int:
        """Take over every entry pending longer than `claim_idle` and handle it; how many."""
        opts = self.options
        idle_ms = int((opts.claim_idle or 0.0) * 1000)
        start: bytes | str = "0-0"
        claimed = 0
        while True:
            reply = await self.redis.xautoclaim(
                opts.stream, opts.group, opts.consumer, idle_ms, start_id=start, count=opts.batch
            )
            start, entries, deleted = claim_reply(reply)
            if deleted:
                # Pending ids whose entries were trimmed or deleted: nothing left to handle.
                if self._trimmed is not None:
                    await self._trimmed(deleted)
                await self.redis.xack(opts.stream, opts.group, *deleted)
            if entries:
                claimed += len(entries)
                await self._deliver(entries)
            if claim_done(start):
                return claimed

    async def drain(self) -> int:
        """Handle every unread entry (without blocking), then every claimable one; how many.

        A missing group (or stream) has nothing to drain.
        """
        handled = 0
        try:
            while got := await self.read_once(block=False):
                handled += got
            return handled + await self.claim_once()
        except ResponseError as exc:
            if is_nogroup(exc):
                return handled
            raise

    async def run(self) -> None:
        reads = blocking_reads(self.redis, self.options.block_ms / 1000)
        try:
            await self._run(reads)
        finally:
            await close_quietly(reads)

    async def _run(self, reads: Redis) -> None:
        opts = self.options
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        every = opts.claim_interval
        next_claim = loop.time()
        need_group = opts.create
        while True:
            try:
                if need_group:
                    await self.ensure_group()
                    need_group = False
                wait = opts.block_ms / 1000
                if every is not None:
                    if loop.time() >= next_claim:
                        next_claim = loop.time() + every
                        await self.claim_once()
                    wait = min(wait, next_claim - loop.time())
                if self._before_read is not None:
                    until = await self._before_read()
                    if until is not None:
                        wait = min(wait, until)
                await self.read_once(block_ms=int(max(0.0, wait) * 1000), reads=reads)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if not (opts.create and is_nogroup(exc)):
                    await backoff.failed(self.name, exc)
                    continue
                need_group = True
                if backoff.failures:  # lost again right away: do not spin
                    await backoff.failed(self.name, exc)
                else:
                    backoff.failures = 1
                    logger.warning(
                        "%s: group %s of %s is gone (Redis flushed or restarted); re-creating",
                        self.name,
                        opts.group,
                        opts.stream,
                    )
            except Exception as exc:
                await backoff.failed(self.name, exc)

    async def _deliver(self, entries: list[Entry]) -> None:
        await self._handle(entries)
        if self.options.ack:
            opts = self.options
            await self.redis.xack(opts.stream, opts.group, *(entry_id for entry_id, _ in entries))


class StreamConsumer(ABC):
    """A loop that reads one stream through a consumer group and `handle`s each batch.

    A subclass names itself, passes its `GroupOptions` to `__init__` and implements `handle`;
    it may override `capacity` and `before_read`, the reader's hooks. The reader does the rest.
    """

    name: ClassVar[str]

    def __init__(self, redis: Redis, options: GroupOptions) -> None:
        self.redis = redis
        self.consumer = options.consumer
        self.reader = GroupReader(
            redis,
            options,
            self.handle,
            name=self.name,
            capacity=self.capacity,
            before_read=self.before_read,
            trimmed=self.trimmed,
        )

    @abstractmethod
    async def handle(self, entries: list[Entry]) -> None:
        """Take effect of a batch; entries stay pending (to be claimed again) if it raises."""

    async def capacity(self) -> int:
        """How many entries may be read now (waiting while none may); a batch by default."""
        return self.reader.options.batch

    async def before_read(self) -> float | None:
        """Periodic work of the consumer, run between reads: returns the seconds until it next
        has work (None: none at all, the default)."""
        return None

    async def trimmed(self, entry_ids: list[bytes]) -> None:
        """Pending entries found deleted from the stream (about to be acked); ignored by default."""
        return

    async def ensure_group(self) -> None:
        await self.reader.ensure_group()

    async def run(self) -> None:
        await self.reader.run()
