"""What the benchmark measures: end-to-end throughput and submit-to-start latency."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hivewire.client import Client
from hivewire.v1 import task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import create_redis

SUBMIT_BATCH = 500
SUBMITS_IN_FLIGHT = 4


@dataclass
class Latency:
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(samples_ms: list[float]) -> Latency:
    """Nearest-rank percentiles of a non-empty sample."""
    s = sorted(samples_ms)

    def rank(p: float) -> float:
        return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]

    return Latency(len(s), rank(50), rank(90), rank(99), s[-1])


async def throughput(gateway: str, redis_url: str, n: int, namespace: str = "hw") -> float:
    """Submit n no-op tasks in batches (one producer) and return tasks/s until all SUCCEEDED."""
    key = Keys(namespace).tasks_by_state(str(task_pb2.TASK_STATE_SUCCEEDED))
    redis = create_redis(redis_url)
    before = int(await redis.zcard(key))
    gate = asyncio.Semaphore(SUBMITS_IN_FLIGHT)
    async with Client(gateway, timeout=30.0) as client:

        async def submit(start: int) -> None:
            async with gate:
                await client.submit_many(
                    {"capability": "noop", "payload": b"{}"}
                    for _ in range(start, min(n, start + SUBMIT_BATCH))
                )

        started = time.perf_counter()
        submitting = asyncio.gather(*(submit(i) for i in range(0, n, SUBMIT_BATCH)))
        try:
            # Poll the SUCCEEDED index: the bench reads the record, not the client's wait loop.
            while True:
                if int(await redis.zcard(key)) - before >= n:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            await submitting
        finally:
            await redis.aclose()
    return n / elapsed


async def latency(gateway: str, n: int, rate: float) -> dict[str, Latency]:
    """Submit n tasks one at a time at `rate`/s; report submit->start and round-trip latency.

    submit->start is the task's own record (create_time to start_time, ms resolution, one
    clock); round trip is what a client sees from SubmitTask to observing SUCCEEDED.
    """
    to_start: list[float] = []
    round_trip: list[float] = []
    async with Client(gateway, timeout=30.0) as client:
        for _ in range(n):
            began = time.perf_counter()
            task = await client.submit_and_wait("noop", b"{}", timeout=30.0)
            round_trip.append((time.perf_counter() - began) * 1000)
            start_ms = task.start_time.ToMilliseconds() or task.end_time.ToMilliseconds()
            to_start.append(float(start_ms - task.create_time.ToMilliseconds()))
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - began)))
    return {"submit_to_start": percentiles(to_start), "round_trip": percentiles(round_trip)}
