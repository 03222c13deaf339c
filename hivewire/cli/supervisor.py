"""`hivewire up`: embedded Redis, the three services and optional demo agents as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hivewire.cli.demo import DEMO_AGENTS
from hivewire.cli.embedded_redis import BIND_ATTEMPTS, BIND_FAILED, EmbeddedRedis, candidate_port
from hivewire.cli.readiness import wait_addr_file, wait_agents_online, wait_serving
from hivewire.core.addr_file import remove_addr_file, write_addr_file

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
        default_factory=lambda: [(name, ",".join(caps)) for name, caps in DEMO_AGENTS.items()]
    )


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]
    core: bool
    tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=20))


class Supervisor:
    """Starts children in order, prefixes their output, and stops them in reverse order."""

    def __init__(self, config: UpConfig, write: Callable[[str], object] | None = None) -> None:
        self.config = config
        self._write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self.children: list[Child] = []
        self._stopping = False
        self.redis_url = config.redis_url or f"redis://127.0.0.1:{config.redis_port}/0"
        # Where each service listens: as configured until it reports the address it bound
        # (an address with port 0 binds any free port).
        self.addrs = {
            "registry": config.registry_addr,
            "coordinator": config.coordinator_addr,
            "gateway": config.gateway_addr,
            "hooks": config.hooks_addr,
        }
        self.run_dir = config.data_dir.resolve() / "run"

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HIVEWIRE_REDIS_URL=self.redis_url,
            HIVEWIRE_GATEWAY_ADDR=self.addrs["gateway"],
            HIVEWIRE_REGISTRY_ADDR=self.addrs["registry"],
            HIVEWIRE_COORDINATOR_ADDR=self.addrs["coordinator"],
            PYTHONUNBUFFERED="1",
        )
        if self.config.hooks_file is not None:
            env["HIVEWIRE_HOOKS_FILE"] = str(self.config.hooks_file.resolve())
            env["HIVEWIRE_HOOKS_ADDR"] = self.addrs["hooks"]
        env.update(extra or {})
        return env

    async def _spawn(
        self, name: str, argv: list[str], *, core: bool, env: dict[str, str] | None = None
    ) -> Child:
        # A process group of its own: a terminal's Ctrl-C reaches only us, and we stop in order.
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=self._env(env),
            process_group=0,
        )
        child = Child(name, proc, asyncio.create_task(asyncio.sleep(0)), core)
        child.pump = asyncio.create_task(self._pump(child))
        self.children.append(child)
        return child

    async def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        while line := await child.process.stdout.readline():
            child.tail.append(line)
            self._write(f"[{child.name}] {line.decode(errors='replace').rstrip()}\n")

    async def _start_redis(self) -> None:
        """The embedded Redis on its port; with port 0, on a free one (another candidate if
        the one picked is taken before redis-server binds it: it exits saying so)."""
        data_dir = self.config.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(BIND_ATTEMPTS):
            port = self.config.redis_port or candidate_port()
            redis = EmbeddedRedis(port, data_dir, appendfsync=self.config.appendfsync)
            child = await self._spawn("redis", redis.command(), core=True)
            try:
                await self._until_ready(child, asyncio.to_thread(redis.wait_ready, READY_TIMEOUT))
            except RuntimeError:
                await child.pump
                taken = any(BIND_FAILED in line for line in child.tail)
                if self.config.redis_port or not taken:
                    raise
                self.children.remove(child)
                continue
            self.redis_url = redis.url
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_addr_file(self.run_dir / "redis.addr", f"127.0.0.1:{port}")
            return
        raise RuntimeError(f"no free port for Redis after {BIND_ATTEMPTS} candidates")

    async def _start_service(self, name: str, module: str) -> None:
        """Start a service and wait until it reports the address it bound and serves there."""
        addr_file = self.run_dir / f"{name}.addr"
        remove_addr_file(addr_file)
        child = await self._spawn(
            name,
            [sys.executable, "-m", module],
            core=True,
            env={"HIVEWIRE_ADDR_FILE": str(addr_file)},
        )

        async def ready() -> None:
            self.addrs[name] = await wait_addr_file(addr_file, READY_TIMEOUT)
            await wait_serving(self.addrs[name], READY_TIMEOUT)

        await self._until_ready(child, ready())

    async def start(self) -> None:
        """Start Redis (unless external), the services, then demo agents; each waits to be ready."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config.redis_url is None:
            await self._start_redis()
        for name in SERVICES:
            await self._start_service(name, f"hivewire_services.{name}")
        if self.config.hooks_file is not None:
            await self._start_service("hooks", "hivewire_services.hooks")
        if self.config.demo:
            for name, caps in self.config.demo_agents:
                argv = [sys.executable, "-m", "hivewire.cli.demo", "--name", name]
                await self._spawn(name, [*argv, "--capabilities", caps], core=False)
            names = {name for name, _ in self.config.demo_agents}
            await wait_agents_online(self.addrs["gateway"], names, READY_TIMEOUT)

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


def banner(config: UpConfig, redis_url: str, gateway_addr: str) -> str:
    lines = [
        "",
        "hivewire is ready",
        f"  gateway   {gateway_addr}",
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
    if gateway_addr != "127.0.0.1:50051":
        lines.append(f"(set HIVEWIRE_GATEWAY_ADDR={gateway_addr} or pass --addr)\n")
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
            sup._write(banner(config, sup.redis_url, sup.addrs["gateway"]))
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
