"""The peer table: every system's figures, Hivewire's as ratios to each peer, and the targets
of the performance issue checked against this run."""

from __future__ import annotations

from typing import Any

UNARY, UNARY16, BATCHED = (
    "hivewire unary",
    "hivewire unary, 16 in flight",
    "hivewire batches of 100",
)
BARE = "bare redis-py Streams loop"


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| system | tasks/s | enqueue→start p50 / p99 ms | CPU µs/task | Redis CPU µs/task "
        "| Redis cmds/task | RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lat = f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}" if r["p50_ms"] is not None else ""
        rss = f"{r['rss_mb']:.0f}" if r["rss_mb"] else ""
        lines.append(
            f"| {r['system']} | {r['tasks_per_s']:,.0f} | {lat} | {r['cpu_us_per_task']:,.0f} "
            f"| {r['redis_cpu_us_per_task']:,.0f} | {r['redis_cmds_per_task']:.1f} | {rss} |"
        )
    return lines


def ratios(rows: list[dict[str, Any]]) -> list[str]:
    ours = [r for r in rows if r["system"].startswith("hivewire")]
    theirs = [r for r in rows if not r["system"].startswith("hivewire")]
    lines = [
        "| Hivewire tasks/s as a ratio to | " + " | ".join(r["system"] for r in theirs) + " |",
        "| --- | " + " | ".join("---:" for _ in theirs) + " |",
    ]
    for o in ours:
        cells = " | ".join(f"{o['tasks_per_s'] / t['tasks_per_s']:.2f}x" for t in theirs)
        lines.append(f"| {o['system']} | {cells} |")
    return lines


def targets(rows: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """(target, met, the figures) for each target that this run measured."""
    by = {r["system"]: r for r in rows}
    peers = [r for r in rows if r["system"] in ("celery", "dramatiq", "taskiq")]
    out: list[tuple[str, bool, str]] = []
    if UNARY not in by or not peers:
        return out
    unary, fastest = by[UNARY], max(peers, key=lambda r: r["tasks_per_s"])
    rate = {name: r["tasks_per_s"] for name, r in by.items()}

    def ratio(name: str, ours: str, theirs: str, at_least: float) -> None:
        x = rate[ours] / rate[theirs]
        out.append((name, x >= at_least, f"{x:.2f}x"))

    if "celery" in by:
        ratio("unary ≥ 1.5x Celery", UNARY, "celery", 1.5)
    if UNARY16 in by:
        ratio(f"16 in flight ≥ 1.3x fastest peer ({fastest['system']})", UNARY16,
              fastest["system"], 1.3)  # fmt: skip
    batched = by.get(BATCHED)
    if batched is not None:
        ratio(f"batched ≥ 1.5x fastest peer ({fastest['system']})", BATCHED,
              fastest["system"], 1.5)  # fmt: skip
        if BARE in by:
            ratio("batched ≥ 0.5x bare Streams loop", BATCHED, BARE, 0.5)
        x = unary["cpu_us_per_task"] / max(batched["cpu_us_per_task"], 1e-9)
        out.append(("unary CPU/task ≤ 2x batched", x <= 2, f"{x:.1f}x"))
    if unary["p50_ms"] is not None:
        ok = unary["p50_ms"] <= 1.5 and unary["p99_ms"] <= 5
        figures = f"{unary['p50_ms']:.1f} / {unary['p99_ms']:.1f} ms"
        out.append(("enqueue→start p50 ≤ 1.5 ms, p99 ≤ 5 ms", ok, figures))
    best = min(peers, key=lambda r: r["redis_cpu_us_per_task"])
    for r in (unary, batched):
        if r is None:
            continue
        name, cpu, redis_cpu = r["system"], r["cpu_us_per_task"], r["redis_cpu_us_per_task"]
        best_cpu = best["redis_cpu_us_per_task"]
        out.append((f"{name}: CPU ≤ 300 µs/task", cpu <= 300, f"{cpu:,.0f} µs"))
        out.append((f"{name}: Redis CPU ≤ best peer ({best['system']})", redis_cpu <= best_cpu,
                    f"{redis_cpu:,.0f} vs {best_cpu:,.0f} µs"))  # fmt: skip
        cmds = r["redis_cmds_per_task"]
        out.append((f"{name}: ≤ 15 Redis commands/task", cmds <= 15, f"{cmds:.1f}"))
    return out


def floor(result: dict[str, Any]) -> list[str]:
    """The grpc.aio floor under the unary path (bench/grpc_floor.py), beside Celery's rate."""
    f = result.get("grpc_floor")
    celery = next((r for r in result["rows"] if r["system"] == "celery"), None)
    if not f or celery is None:
        return []
    calls = f["calls_per_s"]
    return [
        f"The floor under one caller's unary submits: one grpc.aio unary call at a time to a "
        f"server that does nothing, in its own process, runs at {calls:,.0f} calls/s "
        f"(p50 {f['p50_ms']:.2f} ms), {calls / celery['tasks_per_s']:.2f}x Celery's tasks/s. "
        "A Hivewire submit is two such calls in a row (client -> gateway -> coordinator) and "
        "a script, so it cannot beat half of that.",
        "",
    ]


def markdown(result: dict[str, Any]) -> list[str]:
    rows = result["rows"]
    lines = [
        f"Peers: {result['tasks']:,} no-op tasks per system (one Redis INCR each), one producer, "
        f"one worker at its default concurrency, a private redis-server each; latency: "
        f"{result['latency_tasks']} tasks at {result['latency_rate']:g}/s. Hivewire's CPU is "
        "every Hivewire process (registry, coordinator, gateway, agent); a peer's is its "
        "worker's process tree.",
        "",
        *table(rows),
        "",
        *ratios(rows),
        "",
        *floor(result),
        "| target | met | this run |",
        "| --- | :---: | ---: |",
    ]
    for name, met, figures in targets(rows):
        lines.append(f"| {name} | {'yes' if met else 'no'} | {figures} |")
    return lines
