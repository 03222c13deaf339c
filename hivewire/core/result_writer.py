"""Writing agents' reports to the results stream in batches (the Python agent and the gateway).

A report that ends an attempt is stored and its inbox delivery acknowledged in one MULTI:
XADD results, XACK + XDEL the inbox entry, so a delivery is never acknowledged before its
result is stored. Reports on a running attempt (STARTED, PROGRESS) are appended without an
acknowledgement. Reports are written in the order they were handed in.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hivewire.core.backoff import backoff
from hivewire.core.wire import RESULT_FIELD
from hivewire.v1 import stream_pb2

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
WRITE_ATTEMPTS = 20


@dataclass(frozen=True)
class Receipt:
    """Where a delivery came from: the entry to acknowledge once its result is stored."""

    inbox_stream: str
    inbox_group: str
    entry_id: bytes


@dataclass(frozen=True)
class _Item:
    results_stream: str
    result: stream_pb2.TaskResult
    receipt: Receipt | None
    done: asyncio.Future[bool]


class ResultWriter:
    """One queue of reports, written in batches of up to `max_batch` per MULTI.

    Callers get a future (or await their own write); whatever is handed in while a write is in
    flight goes in the next one, so a busy writer pays one round trip per batch and an idle one
    adds no delay. A batch that still fails after WRITE_ATTEMPTS resolves False: its deliveries
    stay pending in the inbox, and the coordinator reclaims them.
    """

    def __init__(self, redis: aioredis.Redis, max_batch: int = 256) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._queue: list[_Item] = []
        self._flusher: asyncio.Task[None] | None = None

    def submit(
        self, results_stream: str, result: stream_pb2.TaskResult, receipt: Receipt | None = None
    ) -> asyncio.Future[bool]:
        """Queue a report (with a receipt: an attempt's end); the future says if it was stored."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(results_stream, result, receipt, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="hivewire-result-writer")
        return done

    async def write(
        self, results_stream: str, result: stream_pb2.TaskResult, receipt: Receipt | None = None
    ) -> bool:
        """`submit` and wait for the write. A cancelled caller does not cancel the write: the
        flusher task writes it, and only this caller's future is cancelled."""
        return await self.submit(results_stream, result, receipt)

    async def close(self) -> None:
        """Wait for what was handed in to be written (or given up)."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            stored = False
            try:
                stored = await self._write(batch)
            except Exception:
                logger.exception("writing %d result(s) failed; they will be reclaimed", len(batch))
            finally:
                for item in batch:
                    if not item.done.done():
                        item.done.set_result(stored)

    async def _write(self, batch: list[_Item]) -> bool:
        delays = backoff(0.05, 2.0)
        for _ in range(WRITE_ATTEMPTS):
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    for item in batch:
                        pipe.xadd(
                            item.results_stream, {RESULT_FIELD: item.result.SerializeToString()}
                        )
                    for (inbox, group), ids in _by_inbox(batch).items():
                        pipe.xack(inbox, group, *ids)
                        pipe.xdel(inbox, *ids)
                    await pipe.execute()
                return True
            except REDIS_ERRORS as exc:
                logger.warning("writing %d result(s) failed (%s)", len(batch), exc)
                await asyncio.sleep(next(delays))
        logger.error("gave up writing %d result(s); they will be reclaimed", len(batch))
        return False


def _by_inbox(batch: list[_Item]) -> dict[tuple[str, str], list[bytes]]:
    """Entry ids per (inbox, group): one XACK and one XDEL each (re-registration moves inboxes)."""
    ids: dict[tuple[str, str], list[bytes]] = {}
    for item in batch:
        if item.receipt is not None:
            key = (item.receipt.inbox_stream, item.receipt.inbox_group)
            ids.setdefault(key, []).append(item.receipt.entry_id)
    return ids


async def acknowledge(redis: aioredis.Redis, receipt: Receipt) -> None:
    """XACK + XDEL one delivery without a result (a malformed entry)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(receipt.inbox_stream, receipt.inbox_group, receipt.entry_id)
        pipe.xdel(receipt.inbox_stream, receipt.entry_id)
        await pipe.execute()
