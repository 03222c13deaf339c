"""Where a unary submit's enqueue -> start time goes, against the gRPC floor under it.

    python -m bench.latency_path [-n 300]

Submits `n` no-op tasks one at a time, 10 ms apart (both sides idle in between, as in the
latency phase of the peer table), each carrying its enqueue time (time.time()) as payload, to
the bench stack with one agent, while MONITOR stamps what reaches Redis. Per task it splits
enqueue -> start into:

- enqueue -> the submit script at Redis: client -> gateway -> coordinator, two gRPC hops and
  the work of each service before the next;
- the submit script -> the handler's first command at Redis: the script (which assigns the
  task and appends it to the agent's inbox), the agent's wake-up, the handler starting, and
  its RPUSH on the wire.

and measures, in the same run, one grpc.aio call's one-way time (client send -> server
handler) between two idle processes (bench/grpc_floor.py): a submit makes two such hops
before its script runs. MONITOR itself slows Redis down a little, so these add up to somewhat
more than the peer table's enqueue -> start.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

from bench import grpc_floor
from bench.measure import percentiles
from bench.peers.hw_agent import DONE, LATENCY
from bench.peers.run import wait_done
from bench.stack import bench_stack
from hivewire.client import Client

RESULTS = Path(__file__).parent / "results"
TARGET = "bench.peers.hw_agent:agent"
EVERY_S = 0.01
WARMUP = 50
# A payload the bench put in a submit script's arguments: its enqueue time.
ENQUEUED = re.compile(r" (1\d{9}\.\d+) ")

Line = tuple[float, str]


async def _monitored(r: aioredis.Redis, n: int, client: Client) -> list[Line]:
    """(Redis time, command) of everything Redis ran while `n` stamped tasks went through."""
    lines: list[Line] = []
    monitoring, seen_marker = asyncio.Event(), asyncio.Event()
    marker = f"bench-latency-path-{time.time()}"

    async def grab() -> None:
        async with r.monitor() as m:
            monitoring.set()
            async for command in m.listen():
                lines.append((float(command["time"]), str(command["command"])))
                if marker in lines[-1][1]:
                    seen_marker.set()

    reader = asyncio.create_task(grab())
    try:
        await asyncio.wait_for(monitoring.wait(), 10)
        await r.ping()  # MONITOR is on once a command after it shows up
        for _ in range(n):
            await client.submit("noop", repr(time.time()).encode())
            await asyncio.sleep(EVERY_S)
        await wait_done(r, n)
        await r.echo(marker)  # everything before it has been seen once it is
        await asyncio.wait_for(seen_marker.wait(), 10)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    return lines


def split(lines: list[Line]) -> tuple[list[float], list[float]]:
    """Per task (in order): enqueue -> its submit script at Redis, and that script -> its
    handler's RPUSH at Redis (seconds). Tasks run one at a time, so the i-th stamped script and
    the i-th RPUSH are one task's."""
    scripts = []
    for at, command in lines:
        if command.startswith("EVALSHA") and (m := ENQUEUED.search(command)):
            scripts.append((at, float(m.group(1))))
    starts = [at for at, command in lines if command.startswith(f"RPUSH {LATENCY}")]
    if len(scripts) != len(starts):
        raise RuntimeError(f"{len(scripts)} stamped submits but {len(starts)} handler starts")
    to_script = [at - enqueued for at, enqueued in scripts]
    to_handler = [start - at for (at, _), start in zip(scripts, starts, strict=True)]
    return to_script, to_handler


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_path", description=__doc__)
    parser.add_argument("-n", type=int, default=300)
    args = parser.parse_args(argv)
    async with bench_stack(agents=1, target=TARGET) as stack:
        r = aioredis.Redis.from_url(stack.redis_url)
        try:
            async with Client(stack.gateway_addr, timeout=30.0) as client:
                await r.set(DONE, 0)
                for _ in range(WARMUP):
                    await client.submit("noop", b"0")
                await wait_done(r, WARMUP)
                await r.delete(LATENCY)
                await r.set(DONE, 0)
                lines = await _monitored(r, args.n, client)
        finally:
            await r.aclose()
    to_script, to_handler = split(lines)
    hop = await grpc_floor.one_way()

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines_out = [
        f"# Where a unary submit's enqueue -> start goes ({when}, {os.cpu_count()} CPUs)",
        "",
        f"{len(to_script)} no-op submits one at a time, {EVERY_S * 1000:.0f} ms apart, one agent"
        " (`python -m bench.latency_path`; MONITOR on, which slows Redis a little).",
        "",
        "| segment | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
    ]
    for name, seconds in (
        ("enqueue -> submit script at Redis (2 gRPC hops + services)", to_script),
        ("submit script -> handler's first command at Redis", to_handler),
        ("one grpc.aio hop, client send -> server handler (floor)", hop),
    ):
        p = percentiles([s * 1000 for s in seconds])
        lines_out.append(f"| {name} | {p.p50_ms:.2f} | {p.p99_ms:.2f} |")
    text = "\n".join(lines_out) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latency_path.md").write_text(text)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
