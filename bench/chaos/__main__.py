"""`python -m bench.chaos` (`make chaos`): a chaos run and its offline check; exit 1 on a breach."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.chaos.report import render, to_json
from bench.chaos.run import ChaosConfig, run_chaos


def parse(argv: Sequence[str] | None) -> tuple[ChaosConfig, Path | None]:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    p.add_argument("--tasks", type=int, default=20_000, help="tasks to submit (20000)")
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--coordinators", type=int, default=1, help="coordinators running at once")
    p.add_argument("--concurrency", type=int, default=16, help="slots per agent")
    p.add_argument("--kill-min", type=float, default=1.5, help="seconds between faults, min")
    p.add_argument("--kill-max", type=float, default=4.0, help="seconds between faults, max")
    p.add_argument("--submit-rate", type=float, default=0.0, help="tasks/s (0: unpaced)")
    p.add_argument("--max-outstanding", type=int, default=2000, help="backpressure bound (0: none)")
    p.add_argument("--work-ms", type=int, default=5, help="handler works up to this long")
    p.add_argument("--appendfsync", choices=["always", "everysec", "no"], default="always")
    p.add_argument("--drain-timeout", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-faults", action="store_true", help="the same run without faults")
    p.add_argument("--kill-registry", action="store_true", help="kill -9 the registry too")
    p.add_argument("--workdir", type=Path, default=None, help="keep Redis data and logs here")
    p.add_argument("--keep", action="store_true", help="keep the workdir after a clean run")
    p.add_argument("--json", type=Path, default=None, help="also write the summary here")
    a = p.parse_args(argv)
    cfg = ChaosConfig(
        tasks=a.tasks,
        agents=a.agents,
        coordinators=a.coordinators,
        concurrency=a.concurrency,
        kill_every=(a.kill_min, a.kill_max),
        submit_rate=a.submit_rate,
        max_outstanding=a.max_outstanding,
        work_ms=a.work_ms,
        appendfsync=a.appendfsync,
        drain_timeout=a.drain_timeout,
        seed=a.seed,
        faults=not a.no_faults,
        kill_registry=a.kill_registry,
        workdir=a.workdir,
        keep=a.keep,
    )
    return cfg, a.json


def main(argv: Sequence[str] | None = None) -> int:
    cfg, json_path = parse(argv)
    result = asyncio.run(run_chaos(cfg, log=lambda line: print(line, flush=True)))
    print(render(result))
    if json_path is not None:
        json_path.write_text(to_json(result) + "\n")
    return 0 if result.verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
