"""What every service process shares: `async with` on its server object, and `main()`."""

from __future__ import annotations

import abc
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from hivewire.core.logs import setup_logging
from hivewire.core.telemetry import setup_tracing
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.server import run, run_until_signal

SettingsT = TypeVar("SettingsT", bound=CommonSettings)


class ServiceProcess(abc.ABC):
    """A service's wiring: `start()` binds and starts it, `shutdown()` is ordered and idempotent."""

    @abc.abstractmethod
    async def start(self, listen: str | None = None) -> int:
        """Start serving (on `listen`, default the configured address); return the bound port."""

    @abc.abstractmethod
    async def shutdown(self) -> None:
        """Stop in order: NOT_SERVING, stop loops, drain RPCs, close connections."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()


def serve(name: str, build: Callable[[SettingsT], ServiceProcess], settings: SettingsT) -> None:
    """The body of `python -m hivewire_services.<name>`: logging, tracing, then run until a signal.

    `settings` come from the service's own config module, the one place that reads its environment.
    """
    setup_logging(settings.log_level, settings.log_format)
    setup_tracing(name)

    async def main() -> None:
        server = build(settings)
        await run_until_signal(server.start, server.shutdown)

    run(main)
