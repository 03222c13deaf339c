"""`python -m bench.peers [--quick]`: the peer table alone (make bench-quick runs this)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import grpc_floor
from bench.peers import env, report
from bench.peers.run import PEERS, run_bare, run_hivewire, run_peer

RESULTS = Path(__file__).parent.parent / "results"


async def compare(
    tasks: int, latency_tasks: int, rate: float, peers: tuple[str, ...]
) -> dict[str, Any]:
    python = await asyncio.to_thread(env.ensure)
    rows = [await run_bare(tasks)]
    for peer in peers:
        rows.append(await run_peer(peer, python, tasks, latency_tasks, rate))
    rows += await run_hivewire(tasks, latency_tasks, rate)
    floor = await grpc_floor.measure()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "tasks": tasks,
        "latency_tasks": latency_tasks,
        "latency_rate": rate,
        "rows": [asdict(r) for r in rows],
        "grpc_floor": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 tasks, 200 for latency")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--latency-tasks", type=int, default=1_000)
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.latency_tasks = 2_000, 200
    peers = tuple(p for p in args.peers.split(",") if p)
    result = asyncio.run(compare(args.tasks, args.latency_tasks, args.latency_rate, peers))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.json").write_text(json.dumps(result, indent=2) + "\n")
    text = "\n".join([f"# Hivewire and its peers ({result['time']}, {result['cpus']} CPUs)", "",
                      *report.markdown(result)]) + "\n"  # fmt: skip
    (args.out / "peers.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
