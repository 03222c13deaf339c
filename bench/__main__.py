"""`make bench`: Hivewire against a bare Redis Streams loop, same machine, same run; the agent
transports compared (bench/transports.py); then the dashboard latency bench (bench/dashboard.py).
Results go to bench/results/."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import dashboard, transports
from bench.baseline import run_baseline
from bench.measure import latency, throughput
from bench.stack import bench_stack

RESULTS = Path(__file__).parent / "results"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_stack(agents=1) as stack:
        # Warm up imports, connections and the scheduler's agent view.
        await throughput(stack.gateway_addr, stack.redis_url, 500)
        baseline = await run_baseline(stack.redis_url, args.tasks)
        hivewire = await throughput(stack.gateway_addr, stack.redis_url, args.tasks)
        lat = await latency(stack.gateway_addr, args.latency_tasks, args.latency_rate)
    compared = await transports.compare(args.transport_tasks) if args.transport_tasks else {}
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
        "tasks": args.tasks,
        "throughput_per_s": {"baseline_redis_streams": baseline, "hivewire": hivewire},
        "ratio_to_baseline": hivewire / baseline,
        "latency_ms": {k: asdict(v) for k, v in lat.items()},
        "latency_rate_per_s": args.latency_rate,
        "agent_transports": compared,
        "transport_tasks": args.transport_tasks,
    }


def _cpus() -> int:
    return os.cpu_count() or 0


def markdown(r: dict[str, Any]) -> str:
    t = r["throughput_per_s"]
    lines = [
        f"# Hivewire benchmark ({r['time']}, {r['machine']['cpus']} CPUs)",
        "",
        f"No-op tasks end to end, one agent, one producer, {r['tasks']} tasks.",
        "",
        "| pipeline | tasks/s | ratio |",
        "| --- | ---: | ---: |",
        f"| bare redis-py Streams loop (baseline) | {t['baseline_redis_streams']:,.0f} | 1.00 |",
        f"| Hivewire (gateway, coordinator, agent) | {t['hivewire']:,.0f} "
        f"| {r['ratio_to_baseline']:.2f} |",
        "",
        f"Latency, one task at a time at {r['latency_rate_per_s']:g}/s:",
        "",
        "| measure | n | p50 ms | p90 ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in r["latency_ms"].items():
        lines.append(
            f"| {name} | {v['count']} | {v['p50_ms']:.1f} | {v['p90_ms']:.1f} "
            f"| {v['p99_ms']:.1f} | {v['max_ms']:.1f} |"
        )
    if r.get("agent_transports"):
        lines += ["", *transports.markdown(r["agent_transports"], r["transport_tasks"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks for throughput")
    parser.add_argument("--latency-tasks", type=int, default=300)
    parser.add_argument("--latency-rate", type=float, default=100.0, help="submits per second")
    parser.add_argument(
        "--transport-tasks", type=int, default=10_000, help="tasks per agent transport (0: skip)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-dashboard", action="store_true", help="skip the dashboard bench")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "latest.md").write_text(text)
    print(text)
    if not args.no_dashboard:
        dashboard.main([])


if __name__ == "__main__":
    main()
