"""Registry, coordinator and agents as real subprocesses on one test redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import grpc

from hivewire.cli.embedded_redis import free_port
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, event_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.store import TaskStore
from tests.settings import StackSettings

# Short leases so faults show within seconds.
FAST = {
    "HIVEWIRE_LEASE_SECONDS": "2",
    "HIVEWIRE_LEASE_SWEEP_INTERVAL": "0.2",
    "HIVEWIRE_TASK_LEASE_SECONDS": "3",
    "HIVEWIRE_RECLAIM_INTERVAL": "0.2",
    "HIVEWIRE_SCHEDULER_INTERVAL": "0.05",
    "HIVEWIRE_RETRY_INITIAL_BACKOFF": "0.05",
    "HIVEWIRE_RETRY_MAX_BACKOFF": "0.2",
    "HIVEWIRE_LOG_LEVEL": "INFO",
}


class Processes:
    """Starts services and agents as children; kills what is left on close."""

    def __init__(self, settings: StackSettings, log_dir: Path, extra: Mapping[str, str]) -> None:
        self.registry_addr = f"127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            **FAST,
            **extra,
            "HIVEWIRE_REDIS_URL": settings.redis_url,
            "HIVEWIRE_NAMESPACE": settings.namespace,
            "HIVEWIRE_REGISTRY_ADDR": self.registry_addr,
        }
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.coordinators: list[str] = []
        self.unclean: list[str] = []  # children that ignored SIGTERM and were killed

    def spawn(self, name: str, args: list[str], env: Mapping[str, str] | None = None) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.children[name] = subprocess.Popen(
            [sys.executable, *args], env={**self.env, **(env or {})}, stdout=log, stderr=log
        )

    def start_registry(self) -> None:
        self.spawn("registry", ["-m", "hivewire_services.registry"])

    def start_coordinator(self, name: str = "coordinator") -> str:
        addr = f"127.0.0.1:{free_port()}"
        self.spawn(
            name, ["-m", "hivewire_services.coordinator"], {"HIVEWIRE_COORDINATOR_ADDR": addr}
        )
        self.coordinators.append(addr)
        return addr

    def start_gateway(self) -> str:
        addr = f"127.0.0.1:{free_port()}"
        env = {"HIVEWIRE_GATEWAY_ADDR": addr, "HIVEWIRE_COORDINATOR_ADDR": self.coordinators[0]}
        self.spawn("gateway", ["-m", "hivewire_services.gateway"], env)
        return addr

    def start_agent(self, name: str, concurrency: int = 4) -> None:
        self.spawn(name, ["-m", "tests.e2e.delivery_agent", name, str(concurrency)])

    def signal(self, name: str, sig: int) -> None:
        self.children[name].send_signal(sig)

    def kill(self, name: str) -> None:
        proc = self.children[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def logs(self) -> str:
        out = []
        for path in sorted(self.log_dir.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def close(self) -> None:
        """SIGTERM agents first (they deregister with the registry), then the services."""
        services = ("registry", "coordinator", "gateway")
        agents = [n for n in self.children if not n.startswith(services)]
        rest = [n for n in self.children if n.startswith(services)]
        for group in (agents, rest):
            for name in group:
                proc = self.children[name]
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for name in group:
                proc = self.children[name]
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.unclean.append(name)
                    proc.kill()
                    proc.wait(5)


class Driver:
    """Submits through a coordinator's gRPC API and reads state straight from Redis."""

    def __init__(self, redis: Redis, settings: StackSettings, coordinator_addr: str) -> None:
        self.redis = redis
        self.keys = Keys(settings.namespace)
        self.store = TaskStore(redis, self.keys, settings)
        self.channel = grpc.aio.insecure_channel(coordinator_addr)
        self.stub = coordinator_pb2_grpc.CoordinatorServiceStub(self.channel)

    async def submit(self, capability: str, payload: bytes = b"", **kw: object) -> task_pb2.Task:
        req = task_pb2.SubmitTaskRequest(capability=capability, payload=payload, **kw)  # type: ignore[arg-type]
        deadline = time.monotonic() + 30
        while True:  # the coordinator may still be starting
            try:
                resp = await self.stub.SubmitTask(
                    coordinator_pb2.CoordinatorServiceSubmitTaskRequest(request=req), timeout=5
                )
                return resp.response.task
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def wait_for(
        self, task_id: str, check: Callable[[task_pb2.Task], bool], within: float = 40
    ) -> task_pb2.Task:
        deadline = time.monotonic() + within
        while True:
            task = await self.store.get(task_id)
            if check(task):
                return task
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; task is {task}")
            await asyncio.sleep(0.1)

    async def events(self, task_id: str | None = None) -> list[event_pb2.Event]:
        entries = await self.redis.xrange(self.keys.events)
        events = [decode_entry(i, f) for i, f in entries]
        return [e for e in events if task_id is None or e.task_id == task_id]

    async def agent_id(self, name: str, within: float = 30) -> str:
        """The id of the live agent registered under `name`."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for raw in await self.redis.zrange(self.keys.leases, 0, -1):
                agent_id = raw.decode()
                if await self.redis.hget(self.keys.agent(agent_id), "name") == name.encode():
                    return agent_id
            await asyncio.sleep(0.1)
        raise AssertionError(f"agent {name} never registered")

    async def close(self) -> None:
        await self.channel.close()


def types(events: list[event_pb2.Event]) -> list[str]:
    return [event_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_") for e in events]
