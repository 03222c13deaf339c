"""`hivewire up`'s supervisor: starts Redis, the services and demo agents in order, restarts what
crashes (capped backoff, crash-loop limit) on the address it had, and stops them all in order."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from hivewire.cli.children import Child, Ready, StartFailed
from hivewire.cli.demo import DEMO_AGENTS
from hivewire.cli.embedded_redis import BIND_ATTEMPTS, BIND_FAILED, EmbeddedRedis, candidate_port
from hivewire.cli.readiness import (
    wait_addr_file,
    wait_agent_registered,
    wait_redis,
    wait_serving,
)
from hivewire.cli.redis_users import RedisUsers
from hivewire.cli.restarts import RestartPolicy, describe_exit, keep_running
from hivewire.cli.up_auth import UpAuth
from hivewire.cli.up_tls import UpTls
from hivewire.core.addr_file import METRICS, read_addr_file, write_addr_file
from hivewire.core.client_config import remove_client_config, write_client_config
from hivewire.core.defaults import env
from hivewire.core.redis_url import redact_secrets

SERVICES = ("registry", "coordinator", "gateway")
# After the agents (all at once), each of these stops once the one before it has exited.
STOP_ORDER = ("gateway", "coordinator", "registry", "hooks", "redis")
READY_TIMEOUT = 30.0


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
    restarts: RestartPolicy = field(default_factory=RestartPolicy)
    # --secure: a local CA in <data_dir>/tls, every child on TLS with client certificates
    # required; `tls_hosts` are names the server certificate holds besides the loopback ones.
    secure: bool = False
    tls_hosts: list[str] = field(default_factory=list)
    # --insecure: plaintext allowed on addresses other than loopback.
    insecure: bool = False


class Supervisor:
    """Starts children in order, prefixes their output, restarts those that exit (unless it is
    stopping), and stops them in order."""

    def __init__(self, config: UpConfig, write: Callable[[str], object] | None = None) -> None:
        self.config = config
        self.write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
        self.children: dict[str, Child] = {}
        # What agents get; services get their own users' (redis_users.py) with the embedded
        # Redis, whose admin URL is `admin_url` (the given URL with an external Redis).
        self.redis_url = config.redis_url or f"redis://127.0.0.1:{config.redis_port}/0"
        self.admin_url = self.redis_url
        self.users: RedisUsers | None = None
        # Where each service listens: as configured until it reports the address it bound
        # (an address with port 0 binds any free port); restarts are pinned to that address.
        self.addrs = {
            "registry": config.registry_addr,
            "coordinator": config.coordinator_addr,
            "gateway": config.gateway_addr,
            "hooks": config.hooks_addr,
        }
        self.run_dir = config.data_dir.resolve() / "run"
        self.tls = UpTls()  # prepared by start()
        self.auth = UpAuth()  # issued by start() once Redis runs
        # Set when Redis is given up on: nothing can work without it, so `hivewire up` stops.
        self.fatal = asyncio.Event()
        self._stopping = asyncio.Event()
        self._served: set[str] = set()
        self._metrics: dict[str, str] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    def say(self, text: str) -> None:
        self.write(f"[hivewire] {text}\n")

    def _child_output(self, text: str) -> None:
        """A child's output line, any Redis password in it hidden (none should be)."""
        self.write(redact_secrets(text, self.users.secrets) if self.users else text)

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HIVEWIRE_REDIS_URL=self.redis_url,
            HIVEWIRE_GATEWAY_ADDR=self.addrs["gateway"],
            HIVEWIRE_REGISTRY_ADDR=self.addrs["registry"],
            HIVEWIRE_COORDINATOR_ADDR=self.addrs["coordinator"],
            # An SDK child that discovers its settings finds this stack's client config.
            HIVEWIRE_DATA_DIR=str(self.config.data_dir.resolve()),
            PYTHONUNBUFFERED="1",
        )
        if self.config.insecure:
            env["HIVEWIRE_INSECURE"] = "1"
        if self.config.hooks_file is not None:
            env["HIVEWIRE_HOOKS_FILE"] = str(self.config.hooks_file.resolve())
            env["HIVEWIRE_HOOKS_ADDR"] = self.addrs["hooks"]
        env.update(extra)
        return env

    # Starting
    async def start(self) -> None:
        """Start Redis (unless external), the services, then demo agents; each waits to be ready.
        StartFailed (or TimeoutError) if one does not come up."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data_dir = self.config.data_dir.resolve()
        remove_client_config(data_dir)  # a stale one would send clients elsewhere meanwhile
        self.tls, note = UpTls.prepare(self.config.secure, data_dir, self.config.tls_hosts)
        if note:
            self.say(note)
        if self.config.redis_url is None and not await self._start_redis():
            return
        auth_env = {**self._env({}), "HIVEWIRE_REDIS_URL": self.admin_url}
        auth_on = self.config.secure or env("AUTH", "").lower() == "tokens"
        demo = self.config.demo_agents if self.config.demo else []
        self.auth = await UpAuth.prepare(auth_on, auth_env, demo)
        if self.auth.enabled:
            self.say("tokens required; the admin token is in the client config")
        for name in SERVICES:
            if not await self._first_start(self._service(name)):
                return
        if self.config.hooks_file is not None and not await self._first_start(
            self._service("hooks")
        ):
            return
        write_client_config(data_dir, self.client_config())
        if self.config.demo:
            agents = [self._agent(name, caps) for name, caps in self.config.demo_agents]
            results = await asyncio.gather(
                *(self._first_start(a) for a in agents), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    def client_config(self) -> dict[str, str]:
        """What the CLI and SDKs run next to the data directory need to reach this stack
        (hivewire.core.client_config)."""
        return {
            "HIVEWIRE_GATEWAY_ADDR": self.addrs["gateway"],
            "HIVEWIRE_REGISTRY_ADDR": self.addrs["registry"],
            "HIVEWIRE_REDIS_URL": self.redis_url,
            **self.tls.client_env(),
            **self.auth.client_env(),
        }

    async def _start_redis(self) -> bool:
        """The embedded Redis on its port; with port 0, on a free one (another candidate if
        the one picked is taken before redis-server binds it: it exits saying so)."""
        data_dir = self.config.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.users = await RedisUsers.prepare(data_dir, env("NAMESPACE", "hw"))
        for _ in range(BIND_ATTEMPTS):
            port = self.config.redis_port or candidate_port()
            redis = EmbeddedRedis(
                port, data_dir, appendfsync=self.config.appendfsync, aclfile=self.users.aclfile
            )
            child = self._redis(redis)
            try:
                if not await self._first_start(child):
                    return False
            except StartFailed:
                await child.output_done()
                if self.config.redis_port or not any(BIND_FAILED in s for s in child.tail):
                    raise
                continue
            self.redis_url = redis.url
            self.admin_url = self.users.admin_url(redis.url)
            return True
        raise StartFailed(f"no free port for Redis after {BIND_ATTEMPTS} candidates")

    def _child(self, name: str, argv: list[str], ready: Ready) -> Child:
        return Child(name, argv, ready, pid_file=self.run_dir / f"{name}.pid")

    def _redis(self, redis: EmbeddedRedis) -> Child:
        """Redis: ready once it answers PING; a restart keeps its port and data directory (the
        AOF replays everything acknowledged)."""

        addr_file = self.run_dir / "redis.addr"

        async def ready(_since_ms: int) -> None:
            await wait_redis(redis.port, READY_TIMEOUT)
            write_addr_file(addr_file, f"127.0.0.1:{redis.port}")

        child = self._child("redis", redis.command(), ready)
        child.addr_file = addr_file
        return child

    def _service(self, name: str) -> Child:
        """A service child: it reports the address it bound in its address file, then serves
        health there; after its first start it must come back on that same address."""
        addr_file = self.run_dir / f"{name}.addr"

        async def ready(_since_ms: int) -> None:
            addr = await wait_addr_file(addr_file, READY_TIMEOUT)
            if name in self._served and addr != self.addrs[name]:
                raise StartFailed(f"came back on {addr}, not on {self.addrs[name]}")
            await wait_serving(addr, READY_TIMEOUT, self.tls.dial)
            if name not in self._served:
                self.addrs[name] = addr
                self._metrics[name] = read_addr_file(addr_file, METRICS) or ""

        def prepare() -> dict[str, str]:
            users = self.users.child_env(self.redis_url, name) if self.users else {}
            return {
                "HIVEWIRE_ADDR_FILE": str(addr_file),
                **self._pins(name),
                **self.tls.child_env(agent=False),
                **self.auth.service_env(),
                **users,
            }

        child = self._child(name, [sys.executable, "-m", f"hivewire_services.{name}"], ready)
        child.prepare, child.addr_file = prepare, addr_file
        return child

    def _pins(self, name: str) -> dict[str, str]:
        """For a restart: the port the first start bound, for gRPC (HIVEWIRE_<NAME>_ADDR is in
        every child's environment already) and /metrics, so nobody needs new addresses."""
        if name not in self._served:
            return {}
        prefix = f"HIVEWIRE_{name.upper()}"
        port = self.addrs[name].rpartition(":")[2]
        pins = {}
        if listen := os.environ.get(f"{prefix}_LISTEN"):
            pins[f"{prefix}_LISTEN"] = f"{listen.rpartition(':')[0]}:{port}"
        if metrics := self._metrics.get(name):
            pins[f"{prefix}_METRICS_PORT"] = metrics.rpartition(":")[2]
        return pins

    def _agent(self, name: str, capabilities: str) -> Child:
        """A demo agent: ready once an agent of its name registered after it started."""
        argv = [sys.executable, "-m", "hivewire.cli.demo", "--name", name]

        def ready(since_ms: int) -> Awaitable[None]:
            return wait_agent_registered(
                self.addrs["registry"],
                name,
                since_ms,
                READY_TIMEOUT,
                self.tls.dial,
                self.auth.admin_token,
            )

        child = self._child(name, [*argv, "--capabilities", capabilities], ready)
        child.agent = True
        child.prepare = lambda: {**self.tls.child_env(agent=True), **self.auth.agent_env(name)}
        return child

    async def _first_start(self, child: Child) -> bool:
        """Start `child` and supervise it from then on; False if stopping began meanwhile."""
        self.children[child.name] = child
        if not await self._launch(child):
            return False
        self._served.add(child.name)
        self.say(f"{child.name} is up (pid {child.pid})")
        watcher = asyncio.create_task(self._supervise(child), name=f"supervise-{child.name}")
        self._watchers.add(watcher)
        return True

    async def _launch(self, child: Child) -> bool:
        """Start a process in `child`'s slot and wait until it serves: True once it does, False
        if stopping began first; StartFailed if it exits or is not ready in time (then killed)."""
        if self._stopping.is_set():
            return False
        since_ms = int(time.time() * 1000)
        await child.spawn(self._env(child.prepare()), self._child_output)
        assert child.process is not None
        ready = asyncio.ensure_future(child.ready(since_ms))
        exited = asyncio.ensure_future(child.process.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, exited, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (ready, exited, stopping):
                waiter.cancel()
        if self._stopping.is_set():
            return False
        if exited in done:
            child.forget()
            raise StartFailed(f"exited with {describe_exit(exited.result())} while starting")
        if (exc := ready.exception()) is not None:
            await child.kill()
            child.forget()
            raise StartFailed(f"did not become ready ({exc})")
        return True

    # Restarting
    async def _supervise(self, child: Child) -> None:
        why = await keep_running(
            child, self._launch, self.config.restarts, self._stopping, self.say
        )
        if not why:
            return
        if child.name == "redis":
            self.say(
                f"redis {why}: giving up on it, and as nothing works without Redis, "
                "stopping everything"
            )
            self.fatal.set()
        else:
            self.say(f"{child.name} {why}: giving up on it (the rest keeps serving)")

    # Stopping
    async def stop(self) -> None:
        """No more restarts; then agents first, then gateway, coordinator, registry, the hooks
        runner and Redis, each SIGTERM, wait, SIGKILL. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for result in await asyncio.gather(*self._watchers, return_exceptions=True):
            if isinstance(result, Exception):
                self.say(f"supervision failed: {result!r}")
        agents = [c for c in self.children.values() if c.agent]
        await asyncio.gather(*(c.terminate() for c in agents))
        for name in STOP_ORDER:
            if (child := self.children.get(name)) is not None:
                await child.terminate()
