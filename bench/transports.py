"""The same no-op workload through one Python agent over each transport (`redis`: its own
inbox on Redis; `grpc`: AgentService on the gateway): throughput, and CPU per task of every
process, so what the gateway's extra hop costs is measured, not guessed (docs/agents.md)."""

from __future__ import annotations

from typing import Any

from bench.measure import cpu_seconds, throughput
from bench.stack import bench_stack

TRANSPORTS = ("redis", "grpc")
WARMUP = 500


async def compare(tasks: int) -> dict[str, Any]:
    """{transport: {"tasks_per_s", "cpu_us_per_task": {process: µs, ..., "total": µs}}}."""
    out: dict[str, Any] = {}
    for transport in TRANSPORTS:
        env = {"HIVEWIRE_AGENT_TRANSPORT": transport}
        async with bench_stack(agents=1, agent_env=env) as stack:
            await throughput(stack.gateway_addr, stack.redis_url, WARMUP)
            before = {name: cpu_seconds(pid) for name, pid in stack.pids.items()}
            rate = await throughput(stack.gateway_addr, stack.redis_url, tasks)
            used = {name: cpu_seconds(pid) - before[name] for name, pid in stack.pids.items()}
        per_task = {name: round(seconds / tasks * 1e6) for name, seconds in used.items()}
        per_task["total"] = round(sum(used.values()) / tasks * 1e6)
        out[transport] = {"tasks_per_s": rate, "cpu_us_per_task": per_task}
    return out


def markdown(result: dict[str, Any], tasks: int) -> list[str]:
    names = ["bench-0", "gateway", "coordinator", "registry", "redis", "total"]
    lines = [
        f"One Python agent, each transport, {tasks} no-op tasks (CPU µs per task by process):",
        "",
        "| transport | tasks/s | "
        + " | ".join(n.replace("bench-0", "agent") for n in names)
        + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for transport, r in result.items():
        cpu = r["cpu_us_per_task"]
        cells = " | ".join(str(cpu.get(n, "")) for n in names)
        lines.append(f"| {transport} | {r['tasks_per_s']:,.0f} | {cells} |")
    return lines
