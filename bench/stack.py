"""The stack under benchmark: embedded Redis, services and bench agents as processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from hivewire.cli.embedded_redis import free_port
from hivewire.cli.supervisor import Supervisor, UpConfig, wait_agents_online

AGENT_TARGET = "bench.agent:agent"
READY_TIMEOUT = 60.0


@dataclass
class BenchStack:
    gateway_addr: str
    redis_url: str
    namespace: str = "hw"


@contextlib.asynccontextmanager
async def bench_stack(agents: int = 1) -> AsyncIterator[BenchStack]:
    """Start Redis (AOF off: we measure the pipeline, not the disk), services and `agents` agents.

    Everything runs as separate processes on free loopback ports, as a user would run it.
    """
    ports = {name: free_port() for name in ("redis", "gateway", "registry", "coordinator")}
    with tempfile.TemporaryDirectory(prefix="hivewire-bench-") as data:
        config = UpConfig(
            gateway_addr=f"127.0.0.1:{ports['gateway']}",
            registry_addr=f"127.0.0.1:{ports['registry']}",
            coordinator_addr=f"127.0.0.1:{ports['coordinator']}",
            redis_port=ports["redis"],
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
                    sys.executable, "-m", "hivewire.cli", "agent", AGENT_TARGET,
                    "--name", f"bench-{i}",
                    env={**os.environ, **_stack_env(config, sup.redis_url)},
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                agent_procs.append(proc)
            names = {f"bench-{i}" for i in range(agents)}
            await wait_agents_online(config.gateway_addr, names, READY_TIMEOUT)
            yield BenchStack(config.gateway_addr, sup.redis_url)
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


def _stack_env(config: UpConfig, redis_url: str) -> dict[str, str]:
    return {
        "HIVEWIRE_REDIS_URL": redis_url,
        "HIVEWIRE_GATEWAY_ADDR": config.gateway_addr,
        "HIVEWIRE_REGISTRY_ADDR": config.registry_addr,
        "HIVEWIRE_COORDINATOR_ADDR": config.coordinator_addr,
    }
