"""The chaos run's report: a few human lines, and the same numbers as JSON."""

from __future__ import annotations

import json
from typing import Any

from bench.chaos.run import ChaosResult

SHOW_VIOLATIONS = 20


def summary(result: ChaosResult) -> dict[str, Any]:
    c = result.verdict.counts
    kills = [f for f in result.faults if f.action == "kill -9"]
    return {
        "ok": result.verdict.ok,
        "tasks": c.get("tasks", 0),
        "succeeded": c.get("succeeded", 0),
        "failed": c.get("failed", 0),
        "dead_letters": c.get("dead_letters", 0),
        "reclaims": c.get("reclaims", 0),
        "retries": c.get("retries", 0),
        "ignored_results": c.get("ignored_results", 0),
        "attempts": c.get("attempts", 0),
        "executions": c.get("executions", 0),
        "re_executions": c.get("re_executions", 0),
        "agent_kills": sum(1 for f in kills if f.target.startswith("agent-")),
        "coordinator_kills": sum(1 for f in kills if f.target.startswith("coordinator")),
        "redis_restarts": sum(1 for f in kills if f.target == "redis"),
        "agent_pauses": sum(1 for f in result.faults if f.action == "SIGSTOP"),
        "registry_kills": sum(1 for f in kills if f.target == "registry"),
        "retried_submit_batches": result.retried_batches,
        "delivery_rate_per_s": round(result.verdict.rate(), 1),
        "wall_seconds": round(result.wall_seconds, 1),
        "agents": result.config.agents,
        "coordinators": result.config.coordinators,
        "appendfsync": result.config.appendfsync,
        "seed": result.seed,
        "violations": [str(v) for v in result.verdict.violations],
    }


def render(result: ChaosResult) -> str:
    s = summary(result)
    lines = [
        "",
        f"chaos run: {s['tasks']} tasks, {s['agents']} agents, {s['coordinators']} "
        f"coordinator(s), seed {s['seed']}, "
        f"appendfsync {s['appendfsync']}",
        f"  faults     {s['agent_kills']} agent kill -9, {s['coordinator_kills']} coordinator "
        f"kill -9, {s['agent_pauses']} agent SIGSTOP past its lease, "
        f"{s['registry_kills']} registry kill -9, {s['redis_restarts']} Redis kill -9 + restart",
        f"  outcome    {s['succeeded']} succeeded, {s['failed']} failed "
        f"({s['dead_letters']} dead letters)",
        f"  delivery   {s['reclaims']} reclaims, {s['retries']} retries, "
        f"{s['ignored_results']} late/duplicate results ignored, "
        f"{s['retried_submit_batches']} submit batches retried",
        f"  work       {s['attempts']} attempts, {s['executions']} handler runs "
        f"({s['re_executions']} re-runs: retries of failed or lost attempts)",
        f"  rate       {s['delivery_rate_per_s']} tasks/s (first submit to last end), "
        f"{s['wall_seconds']} s wall",
    ]
    if result.verdict.ok:
        lines.append(
            "  checker    OK: every accepted task reached exactly one terminal state; "
            "none lost, none applied twice"
        )
    else:
        lines.append(f"  checker    FAILED: {len(s['violations'])} violations")
        lines += [f"    {v}" for v in s["violations"][:SHOW_VIOLATIONS]]
        lines.append(f"  record kept in {result.workdir}")
    return "\n".join(lines) + "\n"


def to_json(result: ChaosResult) -> str:
    return json.dumps(summary(result), indent=2)
