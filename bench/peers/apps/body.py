"""The task body every system runs: count the task, or record its start delay."""

from __future__ import annotations

import os
import time

import redis

DONE = "bench:done"
LATENCY = "bench:lat"
_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


def run(t0: float) -> None:
    """t0: the enqueue time (time.time()) in the latency phase, else 0."""
    if t0:
        client().rpush(LATENCY, time.time() - t0)
    client().incr(DONE)
