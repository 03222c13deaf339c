"""The chaos stack: an AOF redis-server, registry, coordinator(s) and agents as child processes
that can be killed -9 and started again on the same ports (the first start binds port 0 and
reads the bound address from the child's address file)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.cli.readiness import wait_addr_file, wait_serving
from hivewire.core.addr_file import remove_addr_file

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "chaos"
# Short leases and a quick reclaim so faults resolve in seconds; an events stream that is
# never trimmed during the run, so the checker sees every transition.
FAST = {
    "HIVEWIRE_LEASE_SECONDS": "3",
    "HIVEWIRE_LEASE_SWEEP_INTERVAL": "0.25",
    "HIVEWIRE_TASK_LEASE_SECONDS": "6",
    "HIVEWIRE_RECLAIM_INTERVAL": "0.25",
    "HIVEWIRE_RESULTS_CLAIM_IDLE": "3",
    "HIVEWIRE_SCHEDULER_INTERVAL": "0.05",
    "HIVEWIRE_RETRY_INITIAL_BACKOFF": "0.1",
    "HIVEWIRE_RETRY_MAX_BACKOFF": "1.0",
    "HIVEWIRE_EVENTS_MAXLEN": "100000000",
    "HIVEWIRE_SHUTDOWN_GRACE": "2",
    "HIVEWIRE_REDIS_PROBE_INTERVAL": "0.5",
    "HIVEWIRE_LOG_LEVEL": "WARNING",
}


class ChaosStack:
    """Children by name (`redis`, `registry`, `coordinator`, `agent-1`...), logs in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        *,
        agents: int,
        concurrency: int,
        appendfsync: str,
        coordinators: int = 1,
    ) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        # Port 0: a free port at the first start (another if taken), the same one after.
        self.redis = EmbeddedRedis(0, workdir / "redis", appendonly=True, appendfsync=appendfsync)
        self.coordinators = (
            ["coordinator"]
            if coordinators == 1
            else [f"coordinator-{i}" for i in range(1, coordinators + 1)]
        )
        self.services = ["registry", *self.coordinators]
        # Port 0 until a service reports the address it bound; it restarts on that one.
        self.addrs = dict.fromkeys(self.services, "127.0.0.1:0")
        self.agents = [f"agent-{i}" for i in range(1, agents + 1)]
        self.concurrency = concurrency
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def env(self) -> dict[str, str]:
        """The environment of every child (Redis and the registry as started so far)."""
        return {
            **os.environ,
            **FAST,
            "HIVEWIRE_REDIS_URL": self.redis.url,
            "HIVEWIRE_NAMESPACE": NAMESPACE,
            "HIVEWIRE_REGISTRY_ADDR": self.addrs["registry"],
            "PYTHONUNBUFFERED": "1",
        }

    def addr_file(self, name: str) -> Path:
        return self.logs / f"{name}.addr"

    def argv(self, name: str) -> list[str]:
        if name in self.services:
            return [sys.executable, "-m", f"hivewire_services.{name.split('-')[0]}"]
        return [
            sys.executable, "-m", "bench.chaos.agent",
            "--name", name, "--concurrency", str(self.concurrency),
        ]  # fmt: skip

    def start(self, name: str) -> None:
        """Start (or start again) one child; its output goes to logs/<name>.log."""
        if name == "redis":
            self.redis.start(timeout=120)  # its log: redis/redis-server.log
            assert self.redis.process is not None
            self.procs["redis"] = self.redis.process
            return
        with (self.logs / f"{name}.log").open("ab") as log:
            env = self.env
            if name in self.services:
                service = name.split("-")[0].upper()
                env[f"HIVEWIRE_{service}_LISTEN"] = self.addrs[name]
                env["HIVEWIRE_ADDR_FILE"] = str(self.addr_file(name))
            self.procs[name] = subprocess.Popen(
                self.argv(name),
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, name: str) -> None:
        """kill -9 and reap."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    async def start_all(self) -> None:
        await asyncio.to_thread(self.start, "redis")
        for name in self.services:
            remove_addr_file(self.addr_file(name))
            self.start(name)
            self.addrs[name] = await wait_addr_file(self.addr_file(name), 60)
            await wait_serving(self.addrs[name], 60)
        for name in self.agents:
            self.start(name)

    async def stop_all(self) -> None:
        """SIGTERM agents, then the coordinator and registry (SIGKILL after a grace). Redis
        keeps running so the record can be read."""
        for group in (self.agents, self.coordinators, ["registry"]):
            procs = [self.procs[n] for n in group if self.alive(n)]
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    await asyncio.to_thread(proc.wait, 20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    await asyncio.to_thread(proc.wait, 10)

    def close(self) -> None:
        """Kill whatever is left, Redis included."""
        for name, proc in self.procs.items():
            if name != "redis" and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(10)
        self.redis.stop()

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""
