"""taskiq with taskiq-redis's stream broker, defaults otherwise (two worker processes)."""

from __future__ import annotations

import os
import time

import redis.asyncio as aioredis
from body import DONE, LATENCY
from taskiq_redis import RedisStreamBroker

broker = RedisStreamBroker(url=os.environ["BENCH_REDIS_URL"])
_client: aioredis.Redis | None = None


@broker.task(task_name="noop")
async def noop(t0: float) -> None:
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    if t0:
        await _client.rpush(LATENCY, time.time() - t0)
    await _client.incr(DONE)


async def send(t0: float) -> None:
    await noop.kiq(t0)
