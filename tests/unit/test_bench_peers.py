"""The peer bench's table and target checks, and its process-tree accounting."""

from __future__ import annotations

import asyncio
import sys

from bench.peers import report
from bench.peers.procs import cpu_seconds, rss_bytes, tree
from tests.waiting import eventually


def _row(system: str, rate: float, cpu: float, redis_cpu: float, cmds: float) -> dict[str, object]:
    return {
        "system": system, "tasks_per_s": rate, "cpu_us_per_task": cpu,
        "redis_cpu_us_per_task": redis_cpu, "redis_cmds_per_task": cmds, "rss_mb": 100.0,
        "p50_ms": None, "p99_ms": None,
    }  # fmt: skip


def test_targets_compare_hivewire_with_the_peers_of_the_same_run() -> None:
    rows = [
        _row(report.BARE, 6000, 80, 50, 2.4),
        _row("celery", 500, 1700, 270, 11),
        _row("dramatiq", 2000, 400, 150, 11.5),
        _row("taskiq", 1500, 600, 120, 3.1),
        {**_row(report.UNARY, 800, 900, 200, 20), "p50_ms": 1.2, "p99_ms": 6.0},
        _row(report.UNARY16, 2700, 500, 110, 14),
        _row(report.BATCHED, 3100, 280, 100, 9),
    ]
    met = {name: ok for name, ok, _ in report.targets(rows)}
    assert met["unary ≥ 1.5x Celery"]  # 1.6x
    assert met["16 in flight ≥ 1.3x fastest peer (dramatiq)"]  # 1.35x
    assert met["batched ≥ 1.5x fastest peer (dramatiq)"]  # 3100 / 2000 = 1.55x
    assert met["batched ≥ 0.5x bare Streams loop"] is True
    assert not met["unary CPU/task ≤ 2x batched"]  # 900 / 280 = 3.2x
    assert not met["enqueue→start p50 ≤ 1.5 ms, p99 ≤ 5 ms"]  # p99 6.0
    assert not met["hivewire unary: Redis CPU ≤ best peer (taskiq)"]  # 200 > 120
    assert met["hivewire batches of 100: Redis CPU ≤ best peer (taskiq)"]
    assert not met["hivewire unary: ≤ 15 Redis commands/task"]
    text = "\n".join(report.markdown({"rows": rows, "tasks": 10, "latency_tasks": 1,
                                      "latency_rate": 100.0}))  # fmt: skip
    assert "| hivewire unary | 0.13x | 1.60x | 0.40x | 0.53x |" in text


async def test_process_tree_counts_children() -> None:
    grandchild = "import sys; sys.stdin.read()"
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdin=asyncio.subprocess.PIPE
    )
    try:
        pids = await eventually(lambda: len(tree(child.pid)) == 2 and tree(child.pid))
        assert pids[0] == child.pid
        assert rss_bytes(pids) > rss_bytes([child.pid]) > 0
        assert cpu_seconds(pids) > 0
    finally:
        assert child.stdin is not None
        child.stdin.close()
        await child.wait()
