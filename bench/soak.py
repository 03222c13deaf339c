"""Memory of the whole stack under load: `python -m bench.soak --tasks 100000` runs that many
no-op tasks through the stack (batches of 100) and reports every process's RSS afterwards;
`python -m bench.soak --minutes 10 --rate 200` (make bench-soak) keeps a steady rate for that
long and samples RSS every `--every` seconds, so a leak shows as a slope. Target (issue 13):
the whole stack at most 400 MB after 100,000 tasks, flat over the soak.

Redis holds what it is told to: finished tasks for HIVEWIRE_TASK_RETENTION_SECONDS (7 days by
default, so at a steady rate it grows for a week) and the last HIVEWIRE_EVENTS_MAXLEN events.
The soak runs with `--retention` (60 s by default) and the default events bound, both filled
in its first half at 200 tasks/s, and calls it flat when its second half grows by at most
FLAT_GROWTH: a leak is a slope through the whole run, a bound fills once."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.peers.procs import rss_bytes
from bench.peers.run import wait_done
from bench.stack import bench_stack
from hivewire.client import Client

RESULTS = Path(__file__).parent / "results"
BATCH = 100
LIMIT_MB = 400.0
# Flat: the last sample at most this much above the one halfway through the soak.
FLAT_GROWTH = 0.03
RETENTION_S = 60.0


def _rss_mb(pids: dict[str, int]) -> dict[str, float]:
    out = {name: rss_bytes([pid]) / 2**20 for name, pid in pids.items()}
    out["total"] = sum(out.values())
    return out


async def _submit(client: Client, n: int) -> None:
    await client.submit_many({"capability": "noop", "payload": b"0"} for _ in range(n))


async def after_tasks(tasks: int) -> dict[str, Any]:
    """Run `tasks` tasks as fast as batches go; RSS per process once they all ended."""
    async with bench_stack(agents=1, target="bench.peers.hw_agent:agent") as stack:
        r = aioredis.Redis.from_url(stack.redis_url)
        try:
            async with Client(stack.gateway_addr, timeout=30.0) as client:
                before = _rss_mb(stack.pids)
                began = time.perf_counter()
                for start in range(0, tasks, BATCH):
                    await _submit(client, min(BATCH, tasks - start))
                    # Stay at most a few batches ahead: the bench measures memory, not queues.
                    await wait_done(r, start - 20 * BATCH)
                await wait_done(r, tasks)
                elapsed = time.perf_counter() - began
                after = _rss_mb(stack.pids)
        finally:
            await r.aclose()
    return {
        "tasks": tasks,
        "seconds": round(elapsed, 1),
        "rss_mb_before": before,
        "rss_mb_after": after,
        "met": after["total"] <= LIMIT_MB,
    }


async def soak(minutes: float, rate: float, every: float, retention: float) -> dict[str, Any]:
    """A steady `rate` of tasks/s for `minutes`, finished tasks kept `retention` seconds; RSS
    per process every `every` seconds."""
    samples: list[dict[str, float]] = []
    os.environ["HIVEWIRE_TASK_RETENTION_SECONDS"] = str(retention)
    async with (
        bench_stack(agents=1, target="bench.peers.hw_agent:agent") as stack,
        Client(stack.gateway_addr, timeout=30.0) as client,
    ):
        began = time.monotonic()
        end = began + minutes * 60
        next_sample = began
        sent = 0
        while (now := time.monotonic()) < end:
            due = int((now - began) * rate)
            if due > sent:
                await _submit(client, min(BATCH, due - sent))
                sent += min(BATCH, due - sent)
            if now >= next_sample:
                samples.append({"t": round(now - began), **_rss_mb(stack.pids)})
                print(f"{samples[-1]['t']:>5}s  {samples[-1]['total']:.0f} MB", flush=True)
                next_sample += every
            await asyncio.sleep(min(0.05, max(0.0, next_sample - time.monotonic())))
    half = samples[len(samples) // 2]
    growth = samples[-1]["total"] / half["total"] - 1
    return {
        "minutes": minutes,
        "rate": rate,
        "retention_seconds": retention,
        "tasks": sent,
        "samples": samples,
        "growth_second_half": round(growth, 3),
        "met": growth <= FLAT_GROWTH and samples[-1]["total"] <= LIMIT_MB,
    }


def markdown(result: dict[str, Any]) -> str:
    if "samples" in result:
        s = result["samples"]
        head = (
            f"Soak: {result['rate']:g} tasks/s for {result['minutes']:g} min "
            f"({result['tasks']:,} tasks, finished tasks kept {result['retention_seconds']:g} s): "
            f"whole stack {s[0]['total']:.0f} MB at start, {s[len(s) // 2]['total']:.0f} MB "
            f"halfway, {s[-1]['total']:.0f} MB at the end, {result['growth_second_half']:+.1%} "
            f"over the second half (target: flat, ≤ {LIMIT_MB:.0f} MB): "
            f"{'met' if result['met'] else 'NOT met'}.\n"
        )
        names = [k for k in s[0] if k not in ("t", "total")]
        rows = "".join(
            f"| {x['t']} | " + " | ".join(f"{x[k]:.0f}" for k in names) + f" | {x['total']:.0f} |\n"
            for x in s
        )
        table = (
            "\n| s | "
            + " | ".join(names)
            + " | total |\n"
            + "| ---: " * (len(names) + 2)
            + "|\n"
            + rows
        )
        return head + table
    after = result["rss_mb_after"]
    per = ", ".join(f"{k} {v:.0f}" for k, v in after.items() if k != "total")
    return (
        f"Memory after {result['tasks']:,} tasks ({result['seconds']} s): whole stack "
        f"{after['total']:.0f} MB ({per}); target ≤ {LIMIT_MB:.0f} MB: "
        f"{'met' if result['met'] else 'NOT met'}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000, help="memory after this many")
    parser.add_argument("--minutes", type=float, default=0.0, help="soak instead, this long")
    parser.add_argument("--rate", type=float, default=200.0, help="soak tasks per second")
    parser.add_argument("--every", type=float, default=30.0, help="soak sample interval (s)")
    parser.add_argument(
        "--retention", type=float, default=RETENTION_S, help="soak: keep finished tasks (s)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.minutes:
        result = asyncio.run(soak(args.minutes, args.rate, args.every, args.retention))
        name = "soak"
    else:
        result = asyncio.run(after_tasks(args.tasks))
        name = "memory"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
