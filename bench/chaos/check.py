"""Re-check a kept chaos record offline: `python -m bench.chaos.check WORKDIR`.

Starts a private redis-server on the run's AOF directory (nothing else), reads the record the
run left (acknowledged submissions, task hashes, events, dead letters, executions), and prints
the checker's verdict; exit 1 on any violation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.chaos.checker import Verdict, check
from bench.chaos.record import load_record, read_ledger
from bench.chaos.stack import NAMESPACE
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import create_redis


async def check_workdir(workdir: Path) -> Verdict:
    redis = EmbeddedRedis(0, workdir / "redis", appendonly=True)  # any free port
    redis.start(timeout=120)
    try:
        client = create_redis(redis.url)
        try:
            accepted = read_ledger(workdir / "accepted.jsonl")
            return check(await load_record(client, Keys(NAMESPACE), accepted))
        finally:
            await client.aclose()
    finally:
        redis.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos.check", description=__doc__)
    parser.add_argument("workdir", type=Path, help="a chaos run's --workdir (kept with --keep)")
    args = parser.parse_args(argv)
    verdict = asyncio.run(check_workdir(args.workdir))
    for key, value in verdict.counts.items():
        print(f"{key:>16} {value}")
    print(f"{'rate':>16} {verdict.rate():.1f} tasks/s")
    for violation in verdict.violations[:50]:
        print(violation)
    print("OK" if verdict.ok else f"FAILED: {len(verdict.violations)} violations")
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
