"""What every service process shares: `async with` on its server object, and `main()`."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hivewire.core.addr_file import bound_addr, remove_addr_file, write_addr_file
from hivewire.core.lifecycle import AsyncComponent
from hivewire.core.logs import setup_logging
from hivewire.core.telemetry import setup_tracing
from hivewire_services.common.config import ServiceSettings
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.server import run, run_until_signal

SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


class ServiceProcess(AsyncComponent, abc.ABC):
    """A service's wiring: `start()` binds and starts it, `shutdown()` is ordered and idempotent.

    `async with` starts it on its configured address and shuts it down on the way out.
    """

    @abc.abstractmethod
    async def start(self, listen: str | None = None) -> int:
        """Start serving (on `listen`, default the configured address); return the bound port."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Stop in order: NOT_SERVING, stop loops, drain RPCs, close connections."""

    async def _enter(self) -> None:
        await self.start()

    async def _exit(self) -> None:
        await self.shutdown()


def metrics_addr(server: ServiceProcess) -> str | None:
    """Where the service serves /metrics (its `metrics` attribute), None if nowhere."""
    metrics = getattr(server, "metrics", None)
    return metrics.addr if isinstance(metrics, ServiceMetrics) else None


def serve(name: str, build: Callable[[SettingsT], ServiceProcess], settings: SettingsT) -> None:
    """The body of `python -m hivewire_services.<name>`: logging, tracing, then run until a signal.

    `settings` come from the service's own config module, the one place that reads its environment.
    """
    setup_logging(settings.log_level, settings.log_format)
    setup_tracing(name)

    async def main() -> None:
        server = build(settings)

        async def start() -> None:
            port = await server.start()
            if settings.addr_file:
                addr = bound_addr(settings.listen_address, port)
                write_addr_file(Path(settings.addr_file), addr, metrics=metrics_addr(server))

        async def shutdown() -> None:
            if settings.addr_file:
                remove_addr_file(Path(settings.addr_file))
            await server.shutdown()

        await run_until_signal(start, shutdown)

    run(main)
