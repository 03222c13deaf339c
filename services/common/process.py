"""What every service process shares: `async with` on its server object, and `main()`."""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from hivewire.core.addr_file import bound_addr, remove_addr_file, write_addr_file
from hivewire.core.clock import now_ms
from hivewire.core.lifecycle import AsyncComponent
from hivewire.core.logs import setup_logging
from hivewire.core.telemetry import setup_tracing
from hivewire_services.common.config import ServiceSettings
from hivewire_services.common.owned import Owned
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.redis_policy import EvictingRedis
from hivewire_services.common.server import check_transport, run, run_until_signal

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)
EXIT_CONFIG = 2

EXIT_REDIS_REFUSED = 3
"""Exit status of a service that will not use its Redis (a maxmemory-policy that evicts)."""


class ServiceProcess(AsyncComponent, abc.ABC, Generic[SettingsT]):
    """A service's wiring: `start()` binds and starts it, `shutdown()` is ordered and idempotent.

    `async with` starts it on its configured address and shuts it down on the way out. The
    server's `_start()` registers what it creates on `self.owned`, which stops it all in order.
    """

    name: ClassVar[str]
    """What log lines call the process: "registry", "hooks runner"."""

    metrics: ServiceMetrics | None = None
    """The process's /metrics endpoint, when it has one (set by the server's constructor)."""

    def __init__(self, settings: SettingsT, redis: Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis if redis is not None else create_redis(settings.redis_url)
        self.owned = Owned(settings, self.redis, owns_redis=redis is None)

    @property
    def metrics_addr(self) -> str | None:
        """host:port where /metrics is served, None when it is not."""
        return None if self.metrics is None else self.metrics.addr

    def redis_recovered_ms(self) -> int:
        """When Redis last became reachable again after this process lost it (epoch ms; now
        while it is lost; 0 if it never was): loops that judge leases give agents time to
        heartbeat first."""
        gate = None if self.owned.grpc is None else self.owned.grpc.redis_gate
        if gate is None:
            return 0
        return gate.recovered_ms if gate.available else now_ms()

    @property
    def port(self) -> int:
        if self.owned.grpc is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.owned.grpc.port

    async def start(self, listen: str | None = None) -> int:
        """Start serving (on `listen`, default the configured address); return the bound port.

        A start that fails half-way shuts down what it had started.
        """
        try:
            return await self._start(listen or self.settings.listen_address)
        except BaseException:
            await self.shutdown()
            raise

    @abc.abstractmethod
    async def _start(self, listen: str) -> int:
        """Create what the process runs, registered on `self.owned`; return the bound port."""

    async def _release(self) -> None:
        """Finish or release in-flight work once the server has stopped; nothing by default."""

    @property
    def refused(self) -> EvictingRedis | None:
        """Why the process stopped using Redis for good (it may evict keys), if it did."""
        gate = self.owned.grpc.redis_gate if self.owned.grpc is not None else None
        return gate.refused if gate is not None else None

    async def shutdown(self) -> None:
        """NOT_SERVING, stop reading new work, stop the server, `_release()`, close connections."""
        if await self.owned.close(self._release):
            # Under the server's own logger, beside its other lines.
            logging.getLogger(type(self).__module__).info("%s stopped", self.name)

    async def _enter(self) -> None:
        await self.start()

    async def _exit(self) -> None:
        await self.shutdown()


def serve(
    name: str, build: Callable[[SettingsT], ServiceProcess[SettingsT]], settings: SettingsT
) -> None:
    """The body of `python -m hivewire_services.<name>`: logging, tracing, then run until a signal.

    `settings` come from the service's own config module, the one place that reads its environment.
    """
    setup_logging(settings.log_level, settings.log_format)
    try:
        check_transport(settings.listen_address, settings)
    except ValueError as exc:  # TlsError, PlaintextBindError: one clear line, not a traceback
        logging.getLogger(f"hivewire_services.{name}").critical("%s: %s", name, exc)
        raise SystemExit(EXIT_CONFIG) from None
    setup_tracing(name)

    async def main() -> None:
        server = build(settings)
        stop = asyncio.Event()

        async def start() -> None:
            port = await server.start()
            if server.owned.grpc is not None and server.owned.grpc.redis_gate is not None:
                server.owned.grpc.redis_gate.on_refused = lambda _exc: stop.set()
            if settings.addr_file:
                addr = bound_addr(settings.listen_address, port)
                write_addr_file(Path(settings.addr_file), addr, metrics=server.metrics_addr)

        async def shutdown() -> None:
            if settings.addr_file:
                remove_addr_file(Path(settings.addr_file))
            await server.shutdown()

        await run_until_signal(start, shutdown, stop)
        if server.refused is not None:
            raise server.refused

    try:
        run(main)
    except EvictingRedis:  # already logged, with the policy found and the fix
        raise SystemExit(EXIT_REDIS_REFUSED) from None
