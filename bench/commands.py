"""Redis commands per task by command: the bench stack, N tasks unary then batched.

    python -m bench.commands [-n 300] [--batch 100]

Prints INFO commandstats deltas per task (script-internal commands included) and Redis CPU
µs per task for each mode, so a change to the coordinator's scripts can be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import redis.asyncio as aioredis

from bench.peers.hw_agent import DONE
from bench.peers.run import _hivewire_produce, wait_done
from bench.stack import bench_stack
from hivewire.client import Client

TARGET = "bench.peers.hw_agent:agent"


async def _snapshot(r: aioredis.Redis) -> tuple[dict[str, int], float, float]:
    """Calls by command, Redis CPU seconds, and µs spent in EVALSHA (script-internal included:
    less noisy than the process CPU on a shared machine)."""
    stats = await r.info("commandstats")
    cpu = await r.info("cpu")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    script_us = float(stats.get("cmdstat_evalsha", {}).get("usec", 0))
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), script_us


async def _phase(name: str, r: aioredis.Redis, client: Client, n: int, batch: int) -> None:
    await r.set(DONE, 0)
    calls0, cpu0, script0 = await _snapshot(r)
    await _hivewire_produce(client, n, 0, 1, batch)
    polls = await wait_done(r, n)
    calls1, cpu1, script1 = await _snapshot(r)
    # The probe's own commands: the SET, the GET polls, the INFO calls.
    own = {"set": 1, "get": polls, "info": 2}
    delta = {k: calls1.get(k, 0) - calls0.get(k, 0) - own.get(k, 0) for k in calls1}
    total = sum(v for v in delta.values() if v > 0) / n
    print(
        f"{name}: {total:.1f} commands/task, Redis CPU {(cpu1 - cpu0) / n * 1e6:.0f} µs/task,"
        f" in scripts {(script1 - script0) / n:.0f} µs/task"
    )
    for cmd, count in sorted(delta.items(), key=lambda kv: -kv[1]):
        if count > 0:
            print(f"  {cmd:<16} {count / n:6.2f}")


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=300, help="tasks per mode")
    ap.add_argument("--batch", type=int, default=100, help="batch size of the batched mode")
    args = ap.parse_args(argv)
    async with contextlib.AsyncExitStack() as stack_cm:
        stack = await stack_cm.enter_async_context(bench_stack(agents=1, target=TARGET))
        r = aioredis.Redis.from_url(stack.redis_url)
        stack_cm.push_async_callback(r.aclose)
        client = await stack_cm.enter_async_context(Client(stack.gateway_addr, timeout=30.0))
        await _hivewire_produce(client, 50, 0, 1, 1)  # warm up
        await wait_done(r, 50)
        await _phase("unary", r, client, args.n, 1)
        await _phase(f"batches of {args.batch}", r, client, args.n, args.batch)
        calls0, _, _ = await _snapshot(r)
        await asyncio.sleep(5)  # idle on purpose: what the stack sends with nothing to do
        calls1, _, _ = await _snapshot(r)
        idle = (sum(calls1.values()) - sum(calls0.values()) - 2) / 5
        print(f"idle: {idle:.1f} commands/s")
        for cmd in sorted(calls1, key=lambda k: calls0.get(k, 0) - calls1[k])[:8]:
            if calls1[cmd] - calls0.get(cmd, 0) > 0:
                print(f"  {cmd:<16} {(calls1[cmd] - calls0.get(cmd, 0)) / 5:6.1f}/s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
