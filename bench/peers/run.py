"""One measured run per system: throughput phase, then latency phase at a fixed rate."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from bench.baseline import run_baseline
from bench.measure import percentiles
from bench.peers import env
from bench.peers.hw_agent import DONE, LATENCY
from bench.peers.procs import cpu_seconds, redis_counters, rss_bytes, tree
from bench.stack import bench_stack
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.client import Client

PEERS = ("celery", "dramatiq", "taskiq")
WORKERS = {
    "celery": ["-m", "celery", "-A", "celery_app", "worker", "--loglevel=WARNING"],
    "dramatiq": ["-m", "dramatiq", "dramatiq_app"],
    "taskiq": ["-m", "taskiq", "worker", "taskiq_app:broker"],
}
WARMUP = 200
PHASE_TIMEOUT = 300.0
POLL = 0.005
# Produce(n, rate): send n tasks (rate 0: as fast as one caller can, else per second, each with
# its enqueue time); returns when the last one was sent.
Produce = Callable[[int, float], Awaitable[None]]


@dataclass
class Row:
    system: str
    tasks_per_s: float
    cpu_us_per_task: float
    redis_cpu_us_per_task: float
    redis_cmds_per_task: float
    rss_mb: float
    p50_ms: float | None = None
    p99_ms: float | None = None


async def wait_done(r: aioredis.Redis, n: int) -> int:
    """Wait until the DONE counter reaches n; returns how many GETs that took."""
    deadline = time.monotonic() + PHASE_TIMEOUT
    polls = 0
    while int(await r.get(DONE) or 0) < n:
        polls += 1
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {int(await r.get(DONE) or 0)} of {n} tasks done")
        await asyncio.sleep(POLL)
    return polls + 1


async def measure(
    name: str, r: aioredis.Redis, pids: Callable[[], list[int]], produce: Produce, n: int,
    latency_n: int, rate: float,
) -> Row:  # fmt: skip
    """Warm up, then n tasks as fast as the producer goes, then latency_n at `rate`/s."""
    await produce(WARMUP, 0)
    await wait_done(r, WARMUP)
    await r.set(DONE, 0)
    procs = pids()
    calls0, rcpu0 = await redis_counters(r)
    cpu0 = cpu_seconds(procs)
    began = time.perf_counter()
    sending = asyncio.ensure_future(produce(n, 0))
    polls = await wait_done(r, n)
    elapsed = time.perf_counter() - began
    await sending
    cpu1 = cpu_seconds(procs)
    calls1, rcpu1 = await redis_counters(r)
    row = Row(
        name,
        tasks_per_s=n / elapsed,
        cpu_us_per_task=(cpu1 - cpu0) / n * 1e6,
        redis_cpu_us_per_task=(rcpu1 - rcpu0) / n * 1e6,
        # The bench's own GETs, the SET and the INFO calls are not the system's.
        redis_cmds_per_task=(calls1 - calls0 - polls - 3) / n,
        rss_mb=rss_bytes(pids()) / 2**20,
    )
    if latency_n:
        await r.set(DONE, 0)
        await r.delete(LATENCY)
        await produce(latency_n, rate)
        await wait_done(r, latency_n)
        delays = [float(v) * 1000 for v in await r.lrange(LATENCY, 0, -1)]
        lat = percentiles(delays)
        row.p50_ms, row.p99_ms = lat.p50_ms, lat.p99_ms
    return row


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[tuple[str, aioredis.Redis]]:
    with tempfile.TemporaryDirectory(prefix="hivewire-peer-") as data:
        server = EmbeddedRedis(0, Path(data), appendonly=False)
        await asyncio.to_thread(server.start)
        client = aioredis.Redis.from_url(server.url)
        try:
            yield server.url, client
        finally:
            await client.aclose()
            await asyncio.to_thread(server.stop)


async def run_peer(system: str, python: Path, n: int, latency_n: int, rate: float) -> Row:
    async with private_redis() as (url, r):
        environ = {**os.environ, "BENCH_REDIS_URL": url, "PYTHONPATH": str(env.APPS)}
        worker = await asyncio.create_subprocess_exec(
            str(python), *WORKERS[system], cwd=env.APPS, env=environ,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        producer = await asyncio.create_subprocess_exec(
            str(python), str(env.APPS / "produce.py"), system, cwd=env.APPS, env=environ,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert producer.stdin is not None and producer.stdout is not None
        stdin, stdout = producer.stdin, producer.stdout

        async def produce(count: int, per_s: float) -> None:
            stdin.write(f"{count} {per_s}\n".encode())
            await stdin.drain()
            line = await asyncio.wait_for(stdout.readline(), PHASE_TIMEOUT)
            if line.strip() != b"sent":
                raise RuntimeError(f"{system} producer said {line!r}")

        try:
            if (await asyncio.wait_for(stdout.readline(), 60)).strip() != b"ready":
                raise RuntimeError(f"{system} producer did not start")
            return await measure(system, r, lambda: tree(worker.pid), produce, n, latency_n, rate)
        finally:
            stdin.close()
            for proc in (producer, worker):
                if proc.returncode is None:
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    for pid in tree(proc.pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, 9)
                    await proc.wait()


HIVEWIRE_MODES = {
    "hivewire unary": (1, 1),
    "hivewire unary, 16 in flight": (16, 1),
    # 16 clients, each one call at a time (16 web workers, say): the gateway coalesces them.
    "hivewire unary, 16 clients": (-16, 1),
    "hivewire batches of 100": (1, 100),
}


async def run_hivewire(n: int, latency_n: int, rate: float) -> list[Row]:
    """Every mode on one stack (embedded Redis, registry, coordinator, gateway, one agent)."""
    rows: list[Row] = []
    target = "bench.peers.hw_agent:agent"
    async with contextlib.AsyncExitStack() as stack_cm:
        stack = await stack_cm.enter_async_context(bench_stack(agents=1, target=target))
        r = aioredis.Redis.from_url(stack.redis_url)
        stack_cm.push_async_callback(r.aclose)
        client = await stack_cm.enter_async_context(Client(stack.gateway_addr, timeout=30.0))
        services = [pid for name, pid in stack.pids.items() if name != "redis"]
        for name, (in_flight, batch) in HIVEWIRE_MODES.items():

            async def produce(count: int, per_s: float, in_flight=in_flight, batch=batch) -> None:  # type: ignore[no-untyped-def]
                await _hivewire_produce(client, count, per_s, in_flight, batch)

            lat_n = latency_n if (in_flight, batch) == (1, 1) else 0
            rows.append(await measure(name, r, lambda: services, produce, n, lat_n, rate))
    return rows


async def _hivewire_produce(
    client: Client, n: int, rate: float, in_flight: int, batch: int
) -> None:
    if rate:
        began = time.perf_counter()
        for i in range(n):
            await client.submit("noop", str(time.time()).encode())
            await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.perf_counter()))
        return
    if batch > 1:
        for start in range(0, n, batch):
            size = min(batch, n - start)
            await client.submit_many({"capability": "noop", "payload": b"0"} for _ in range(size))
        return
    # in_flight < 0: that many callers, each with a client of its own (one call at a time).
    callers = abs(in_flight)
    share = [n // callers + (1 if i < n % callers else 0) for i in range(callers)]

    async def caller(count: int) -> None:
        async with contextlib.AsyncExitStack() as own:
            c = client
            if in_flight < 0:
                c = await own.enter_async_context(Client(client.addr, timeout=client.timeout))
            for _ in range(count):
                await c.submit("noop", b"0")

    await asyncio.gather(*(caller(c) for c in share))


async def run_bare(n: int) -> Row:
    """The bare redis-py Streams loop (bench/baseline.py): the floor, in this process."""
    async with private_redis() as (url, r):
        await run_baseline(url, min(n, 1000))  # warm-up
        calls0, rcpu0 = await redis_counters(r)
        cpu0 = cpu_seconds([os.getpid()])
        rate = await run_baseline(url, n)
        cpu1 = cpu_seconds([os.getpid()])
        calls1, rcpu1 = await redis_counters(r)
    return Row(
        "bare redis-py Streams loop",
        tasks_per_s=rate,
        cpu_us_per_task=(cpu1 - cpu0) / n * 1e6,
        redis_cpu_us_per_task=(rcpu1 - rcpu0) / n * 1e6,
        redis_cmds_per_task=(calls1 - calls0) / n,
        rss_mb=0.0,
    )
