"""The agent's Redis side: the client, writing results, acknowledging deliveries."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hivewire.agent._session import Identity
from hivewire.core.backoff import backoff
from hivewire.core.redis_client import connection_class
from hivewire.core.wire import RESULT_FIELD
from hivewire.v1 import stream_pb2

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
WRITE_ATTEMPTS = 20


def create_agent_redis(url: str) -> aioredis.Redis:
    """hiredis client with short timeouts and capped retries (the inbox is read on a client of
    its own, `blocking_reads`)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=5.0,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        decode_responses=False,
        **connection_class(url),
    )


async def add_result(
    redis: aioredis.Redis, identity: Identity, result: stream_pb2.TaskResult
) -> None:
    """XADD a result without acknowledging anything (STARTED reports)."""
    await redis.xadd(identity.results_stream, {RESULT_FIELD: result.SerializeToString()})


class ResultWriter:
    """Writes finished attempts in batches: XADD each result, then XACK and XDEL the deliveries.

    Callers await their own write; whatever finishes while a write is in flight goes in the next
    one, so a busy agent pays one round trip per batch and an idle one adds no delay. Deleting
    handled entries keeps the inbox as short as the work in flight. A batch that still fails
    after WRITE_ATTEMPTS stays pending in the inbox, and the coordinator reclaims it.
    """

    def __init__(self, redis: aioredis.Redis, max_batch: int = 256) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._queue: list[tuple[Identity, bytes, stream_pb2.TaskResult, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def complete(
        self, identity: Identity, entry_id: bytes, result: stream_pb2.TaskResult
    ) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queue.append((identity, entry_id, result, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="hivewire-result-writer")
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            try:
                await self._write(batch)
            finally:
                for *_, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _write(
        self, batch: list[tuple[Identity, bytes, stream_pb2.TaskResult, asyncio.Future[None]]]
    ) -> None:
        delays = backoff(0.05, 2.0)
        for _ in range(WRITE_ATTEMPTS):
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    for identity, _, result, _ in batch:
                        pipe.xadd(
                            identity.results_stream, {RESULT_FIELD: result.SerializeToString()}
                        )
                    for (inbox, group), ids in _by_inbox(batch).items():
                        pipe.xack(inbox, group, *ids)
                        pipe.xdel(inbox, *ids)
                    await pipe.execute()
                return
            except REDIS_ERRORS as exc:
                logger.warning("writing %d result(s) failed (%s)", len(batch), exc)
                await asyncio.sleep(next(delays))
        logger.error("gave up writing %d result(s); they will be reclaimed", len(batch))


def _by_inbox(
    batch: list[tuple[Identity, bytes, stream_pb2.TaskResult, asyncio.Future[None]]],
) -> dict[tuple[str, str], list[bytes]]:
    """Entry ids per (inbox, group): one XACK and one XDEL each (re-registration moves inboxes)."""
    ids: dict[tuple[str, str], list[bytes]] = {}
    for identity, entry_id, _, _ in batch:
        ids.setdefault((identity.inbox_stream, identity.inbox_group), []).append(entry_id)
    return ids


async def ack(redis: aioredis.Redis, identity: Identity, entry_id: bytes) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(identity.inbox_stream, identity.inbox_group, entry_id)
        pipe.xdel(identity.inbox_stream, entry_id)
        await pipe.execute()
