"""The agent's Redis side: the client, writing results, acknowledging deliveries."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hivewire._agent_session import Identity
from hivewire._agent_support import backoff
from hivewire.v1 import stream_pb2
from hivewire.wire import RESULT_FIELD

logger = logging.getLogger(__name__)

REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
WRITE_ATTEMPTS = 20


def create_agent_redis(url: str, read_block_ms: int) -> aioredis.Redis:
    """hiredis client with timeouts above the blocking read and capped retries."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=5.0 + read_block_ms / 1000,
        socket_connect_timeout=2.0,
        retry=Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), 3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        decode_responses=False,
    )


async def add_result(
    redis: aioredis.Redis, identity: Identity, result: stream_pb2.TaskResult
) -> None:
    """XADD a result without acknowledging anything (STARTED reports)."""
    await redis.xadd(identity.results_stream, {RESULT_FIELD: result.SerializeToString()})


async def complete(
    redis: aioredis.Redis, identity: Identity, entry_id: bytes, result: stream_pb2.TaskResult
) -> None:
    """XADD the result, then XACK and XDEL the delivery, in one MULTI; retried on Redis errors.

    Deleting the handled entry keeps the inbox as short as the work in flight.

    If every attempt fails the entry stays pending and the coordinator reclaims it.
    """
    data = result.SerializeToString()
    delays = backoff(0.05, 2.0)
    for _ in range(WRITE_ATTEMPTS):
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xadd(identity.results_stream, {RESULT_FIELD: data})
                pipe.xack(identity.inbox_stream, identity.inbox_group, entry_id)
                pipe.xdel(identity.inbox_stream, entry_id)
                await pipe.execute()
            return
        except REDIS_ERRORS as exc:
            logger.warning("writing result of %s failed (%s)", result.task_id, exc)
            await asyncio.sleep(next(delays))
    logger.error("gave up writing result of %s; it will be reclaimed", result.task_id)


async def ack(redis: aioredis.Redis, identity: Identity, entry_id: bytes) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(identity.inbox_stream, identity.inbox_group, entry_id)
        pipe.xdel(identity.inbox_stream, entry_id)
        await pipe.execute()
