"""The stack under benchmark: embedded Redis, services and bench agents as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hivewire.cli.readiness import wait_agents_online
from hivewire.cli.supervisor import Supervisor, UpConfig

AGENT_TARGET = "bench.agent:agent"
ANY_PORT = "127.0.0.1:0"
READY_TIMEOUT = 60.0


@dataclass
class BenchStack:
    gateway_addr: str
    redis_url: str
    namespace: str = "hw"
    # Process ids by name: redis, registry, coordinator, gateway, bench-0, ...
    pids: dict[str, int] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def bench_stack(
    agents: int = 1, agent_env: Mapping[str, str] | None = None, target: str = AGENT_TARGET
) -> AsyncIterator[BenchStack]:
    """Start Redis (AOF off: we measure the pipeline, not the disk), services and `agents` agents
    (with `agent_env` on top of the stack's, e.g. HIVEWIRE_AGENT_TRANSPORT=grpc).

    Everything runs as separate processes on loopback ports they bind and report (port 0), as
    a user would run it.
    """
    with tempfile.TemporaryDirectory(prefix="hivewire-bench-") as data:
        config = UpConfig(
            gateway_addr=ANY_PORT,
            registry_addr=ANY_PORT,
            coordinator_addr=ANY_PORT,
            redis_port=0,
            data_dir=Path(data),
        )
        sup = Supervisor(config, write=lambda _line: None)
        # Per-task logging would measure the terminal, not the pipeline.
        os.environ.setdefault("HIVEWIRE_LOG_LEVEL", "WARNING")
        agent_procs: list[asyncio.subprocess.Process] = []
        try:
            await sup.start()
            for i in range(agents):
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "hivewire.cli", "agent", target,
                    "--name", f"bench-{i}",
                    env={**os.environ, **_stack_env(sup), **(agent_env or {})},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                agent_procs.append(proc)
            names = {f"bench-{i}" for i in range(agents)}
            await wait_agents_online(sup.addrs["gateway"], names, READY_TIMEOUT)
            pids = {name: child.pid for name, child in sup.children.items()}
            pids.update({f"bench-{i}": proc.pid for i, proc in enumerate(agent_procs)})
            yield BenchStack(sup.addrs["gateway"], sup.admin_url, pids=pids)
        finally:
            for proc in agent_procs:
                if proc.returncode is None:
                    proc.terminate()
            for proc in agent_procs:
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            await sup.stop()


def _stack_env(sup: Supervisor) -> dict[str, str]:
    """Where the started stack is: the addresses its services reported."""
    return {
        "HIVEWIRE_REDIS_URL": sup.redis_url,
        "HIVEWIRE_GATEWAY_ADDR": sup.addrs["gateway"],
        "HIVEWIRE_REGISTRY_ADDR": sup.addrs["registry"],
        "HIVEWIRE_COORDINATOR_ADDR": sup.addrs["coordinator"],
        # Where a bench agent's task body counts (bench/peers/hw_agent.py).
        "BENCH_REDIS_URL": sup.admin_url,
    }
