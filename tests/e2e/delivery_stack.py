"""Registry, coordinator and agents as real subprocesses on one test redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import grpc

from hivewire.core.addr_file import read_addr_file, remove_addr_file
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, event_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.store import TaskStore
from tests.settings import StackSettings
from tests.waiting import eventually

T = TypeVar("T")
ANY_PORT = "127.0.0.1:0"

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


async def while_unavailable(call: Callable[[], Awaitable[T]], within: float = 30) -> T:
    """`await call()`, again while the service answers UNAVAILABLE (it is restarting)."""

    async def attempt() -> tuple[T]:
        try:
            return (await call(),)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            raise AssertionError(f"UNAVAILABLE: {exc.details()}") from exc

    return (await eventually(attempt, within=within, message="an answer but UNAVAILABLE"))[0]


class Processes:
    """Starts services (on port 0, each reporting its address) and agents as children; kills
    what is left on close. Start the registry first: the others are told its address."""

    def __init__(self, settings: StackSettings, log_dir: Path, extra: Mapping[str, str]) -> None:
        self.registry_addr = ""
        self.env = {
            **os.environ,
            **FAST,
            **extra,
            "HIVEWIRE_REDIS_URL": settings.redis_url,
            "HIVEWIRE_NAMESPACE": settings.namespace,
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

    async def start_service(self, name: str, service: str, env: Mapping[str, str]) -> str:
        """Start `hivewire_services.<service>` on port 0; its address once it serves there."""
        addr_file = self.log_dir / f"{name}.addr"
        remove_addr_file(addr_file)
        listen = {
            f"HIVEWIRE_{service.upper()}_ADDR": ANY_PORT,
            "HIVEWIRE_ADDR_FILE": str(addr_file),
        }
        self.spawn(name, ["-m", f"hivewire_services.{service}"], {**env, **listen})

        def reported() -> str | None:
            proc = self.children[name]
            assert proc.poll() is None, f"{name} exited with {proc.returncode}:\n{self.logs()}"
            return read_addr_file(addr_file)

        return await eventually(reported, within=60, message=f"the address of {name}")

    async def start_registry(self) -> str:
        self.registry_addr = await self.start_service("registry", "registry", {})
        self.env["HIVEWIRE_REGISTRY_ADDR"] = self.registry_addr
        return self.registry_addr

    async def start_coordinator(self, name: str = "coordinator") -> str:
        addr = await self.start_service(name, "coordinator", {})
        self.coordinators.append(addr)
        return addr

    async def start_gateway(self) -> str:
        env = {"HIVEWIRE_COORDINATOR_ADDR": self.coordinators[0]}
        return await self.start_service("gateway", "gateway", env)

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
        resp = await while_unavailable(
            lambda: self.stub.SubmitTask(
                coordinator_pb2.CoordinatorServiceSubmitTaskRequest(request=req), timeout=5
            )
        )
        return resp.response.task

    async def wait_for(
        self, task_id: str, check: Callable[[task_pb2.Task], bool], within: float = 40
    ) -> task_pb2.Task:
        async def checked() -> tuple[task_pb2.Task]:
            task = await self.store.get(task_id)
            assert check(task), f"task is {task}"
            return (task,)

        return (await eventually(checked, within=within, message="the task's state"))[0]

    async def events(self, task_id: str | None = None) -> list[event_pb2.Event]:
        entries = await self.redis.xrange(self.keys.events)
        events = [decode_entry(i, f) for i, f in entries]
        return [e for e in events if task_id is None or e.task_id == task_id]

    async def agent_id(self, name: str, within: float = 30) -> str:
        """The id of the live agent registered under `name`."""

        async def registered() -> str | None:
            for raw in await self.redis.zrange(self.keys.leases, 0, -1):
                agent_id = raw.decode()
                if await self.redis.hget(self.keys.agent(agent_id), "name") == name.encode():
                    return agent_id
            return None

        return await eventually(registered, within=within, message=f"agent {name} registered")

    async def close(self) -> None:
        await self.channel.close()


def types(events: list[event_pb2.Event]) -> list[str]:
    return [event_pb2.EventType.Name(e.type).removeprefix("EVENT_TYPE_") for e in events]
