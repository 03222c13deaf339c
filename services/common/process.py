"""What every service process shares: `async with` on its server object, and `main()`."""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from hivewire.core.addr_file import bound_addr, remove_addr_file, write_addr_file
from hivewire.core.logs import setup_logging
from hivewire.core.telemetry import setup_tracing
from hivewire_services.common.config import Settings, load_settings
from hivewire_services.common.server import run, run_until_signal


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


def serve(
    name: str, build: Callable[[Settings], ServiceProcess], settings: Settings | None = None
) -> None:
    """The body of `python -m services.<name>`: logging, tracing, then run until SIGTERM/SIGINT."""
    settings = settings or load_settings()
    setup_logging(settings.log_level, settings.log_format)
    setup_tracing(name)

    async def main() -> None:
        server = build(settings)

        async def start() -> None:
            port = await server.start()
            if settings.addr_file:
                write_addr_file(Path(settings.addr_file), bound_addr(settings.listen(name), port))

        async def shutdown() -> None:
            if settings.addr_file:
                remove_addr_file(Path(settings.addr_file))
            await server.shutdown()

        await run_until_signal(start, shutdown)

    run(main)
