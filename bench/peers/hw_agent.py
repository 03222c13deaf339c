"""Hivewire's side of the peer benchmark: the same task body as the peers' (bench/peers/apps/
body.py), in an agent at its default concurrency."""

from __future__ import annotations

import os
import time

import redis.asyncio as aioredis

from hivewire.agent import Agent, TaskContext

DONE = "bench:done"
LATENCY = "bench:lat"

agent = Agent("bench")
_client: aioredis.Redis | None = None


@agent.handler("noop")
async def noop(ctx: TaskContext) -> bytes:
    """The payload is the enqueue time (time.time()) in the latency phase, else `0`."""
    global _client
    if _client is None:
        _client = aioredis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    t0 = float(ctx.payload or b"0")
    if t0:
        await _client.rpush(LATENCY, time.time() - t0)
    await _client.incr(DONE)
    return b""
