"""`hivewire up`: embedded Redis, the three services and optional demo agents as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.v1 import agent_pb2, gateway_pb2_grpc

logger = logging.getLogger(__name__)

SERVICES = ("registry", "coordinator", "gateway")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class UpConfig:
    """What `hivewire up` starts and where."""

    gateway_addr: str
    registry_addr: str
    coordinator_addr: str
    redis_url: str | None = None
    redis_port: int = 6390
    data_dir: Path = Path(".hivewire")
    appendfsync: str = "everysec"
    demo: bool = False
    # The hooks runner starts only when a hooks file is given (docs/hooks.md).
    hooks_file: Path | None = None
    hooks_addr: str = "127.0.0.1:50054"
    demo_agents: list[tuple[str, str]] = field(
        default_factory=lambda: [
            ("demo-1", "echo,wordcount,sleep,chunk,merge-counts,upper,collect"),
            ("demo-2", "echo,wordcount,fail,chunk,merge-counts,upper,collect"),
        ]
    )


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    core: bool


class Supervisor:
    """Starts children in order, prefixes their output, and stops them in reverse order."""

    def __init__(self, config: UpConfig, write: Callable[[str], object] | None = None) -> None:
        self.config = config
        self._write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self.children: list[Child] = []
        self._stopping = False
        self.redis_url = config.redis_url or f"redis://127.0.0.1:{config.redis_port}/0"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HIVEWIRE_REDIS_URL=self.redis_url,
            HIVEWIRE_GATEWAY_ADDR=self.config.gateway_addr,
            HIVEWIRE_REGISTRY_ADDR=self.config.registry_addr,
            HIVEWIRE_COORDINATOR_ADDR=self.config.coordinator_addr,
            PYTHONUNBUFFERED="1",
        )
        if self.config.hooks_file is not None:
            env["HIVEWIRE_HOOKS_FILE"] = str(self.config.hooks_file.resolve())
            env["HIVEWIRE_HOOKS_ADDR"] = self.config.hooks_addr
        return env

    async def _spawn(self, name: str, argv: list[str], *, core: bool) -> Child:
        # A process group of its own: a terminal's Ctrl-C reaches only us, and we stop in order.
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=self._env(),
            process_group=0,
        )
        child = Child(name, proc, asyncio.create_task(self._pump(name, proc)), core)
        self.children.append(child)
        return child

    async def _pump(self, name: str, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._write(f"[{name}] {line.decode(errors='replace').rstrip()}\n")

    async def start(self) -> None:
        """Start Redis (unless external), the services, then demo agents; each waits to be ready."""
        if self.config.redis_url is None:
            redis = EmbeddedRedis(
                self.config.redis_port,
                self.config.data_dir.resolve(),
                appendfsync=self.config.appendfsync,
            )
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            child = await self._spawn("redis", redis.command(), core=True)
            await self._until_ready(child, asyncio.to_thread(redis.wait_ready, READY_TIMEOUT))
        addrs = {
            "registry": self.config.registry_addr,
            "coordinator": self.config.coordinator_addr,
            "gateway": self.config.gateway_addr,
        }
        for name in SERVICES:
            child = await self._spawn(
                name, [sys.executable, "-m", f"hivewire_services.{name}"], core=True
            )
            await self._until_ready(child, wait_serving(addrs[name], READY_TIMEOUT))
        if self.config.hooks_file is not None:
            child = await self._spawn(
                "hooks", [sys.executable, "-m", "hivewire_services.hooks"], core=True
            )
            await self._until_ready(child, wait_serving(self.config.hooks_addr, READY_TIMEOUT))
        if self.config.demo:
            for name, caps in self.config.demo_agents:
                argv = [sys.executable, "-m", "hivewire.cli.demo", "--name", name]
                await self._spawn(name, [*argv, "--capabilities", caps], core=False)
            names = {name for name, _ in self.config.demo_agents}
            await wait_agents_online(self.config.gateway_addr, names, READY_TIMEOUT)

    async def _until_ready(self, child: Child, ready: Awaitable[object]) -> None:
        waiter = asyncio.ensure_future(ready)
        died = asyncio.ensure_future(child.process.wait())
        done, _ = await asyncio.wait({waiter, died}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode} while starting"
            )
        died.cancel()
        waiter.result()

    async def wait_core_exit(self) -> Child:
        """Return the first core child that exits (unexpectedly, unless we are stopping)."""
        waits = {asyncio.ensure_future(c.process.wait()): c for c in self.children if c.core}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return waits[next(iter(done))]

    async def stop(self) -> None:
        """Agents first, then gateway, coordinator, registry, then Redis: SIGTERM, wait, SIGKILL."""
        if self._stopping:
            return
        self._stopping = True
        agents = [c for c in self.children if not c.core]
        await asyncio.gather(*(_terminate(c) for c in agents))
        for child in reversed([c for c in self.children if c.core]):
            await _terminate(child)


async def _terminate(child: Child) -> None:
    proc = child.process
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            logger.warning("%s did not stop in %ss; killing it", child.name, STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(child.pump, 2.0)


async def wait_serving(addr: str, limit: float) -> None:
    """Poll grpc.health.v1 Check at `addr` until SERVING; TimeoutError after `limit` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                resp = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if resp.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() >= deadline:
                raise TimeoutError(f"{addr} not SERVING after {limit}s")
            await asyncio.sleep(0.1)


async def wait_agents_online(gateway_addr: str, names: set[str], limit: float) -> None:
    """Poll the gateway's ListAgents until agents with these names are ONLINE."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    async with grpc.aio.insecure_channel(gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        while True:
            try:
                reply = await stub.ListAgents(
                    agent_pb2.ListAgentsRequest(state=agent_pb2.AGENT_STATE_ONLINE, page_size=1000),
                    timeout=1.0,
                )
                if names <= {a.name for a in reply.agents}:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() >= deadline:
                raise TimeoutError(f"agents {sorted(names)} not ONLINE after {limit}s")
            await asyncio.sleep(0.1)


def banner(config: UpConfig, redis_url: str) -> str:
    lines = [
        "",
        "hivewire is ready",
        f"  gateway   {config.gateway_addr}",
        f"  redis     {redis_url}",
        "",
        "try:",
        "  hivewire agents",
        '  hivewire submit echo --payload \'{"hello": "world"}\' --wait --json',
        '  hivewire submit wordcount --payload \'{"text": "to be or not to be"}\' --wait',
        "  hivewire watch",
        "",
        "workflows (custom commands in ./commands):",
        "  hivewire commands",
        "  hivewire run analyze-text -p text='to be or not to be that is the question' --wait",
        "  hivewire run diamond --wait --json",
        "  hivewire workflows",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    if not config.demo:
        lines.insert(6, "  hivewire agent            # start a demo agent (echo, wordcount, sleep)")
    if config.hooks_file is not None:
        lines.insert(4, f"  hooks     {config.hooks_file}")
    if config.gateway_addr != "127.0.0.1:50051":
        lines.append(f"(set HIVEWIRE_GATEWAY_ADDR={config.gateway_addr} or pass --addr)\n")
    return "\n".join(lines) + "\n"


async def run_up(config: UpConfig, write: Callable[[str], object] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or until a core child dies (exit 1)."""
    sup = Supervisor(config, write)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        starting = asyncio.ensure_future(sup.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        elif starting.exception() is not None:
            sup._write(f"[hivewire] failed to start: {starting.exception()}\n")
            code = 1
        else:
            sup._write(banner(config, sup.redis_url))
            died = asyncio.ensure_future(sup.wait_core_exit())
            await asyncio.wait({died, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if died.done():
                child = died.result()
                sup._write(f"[hivewire] {child.name} exited with {child.process.returncode}\n")
                code = 1
            died.cancel()
        stopped.cancel()
    finally:
        sup._write("[hivewire] stopping\n")
        await sup.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return code
