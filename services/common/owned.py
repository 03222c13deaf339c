"""What a service process started and must stop, stopped once in the house shutdown order."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import grpc

from hivewire.core.background import cancel_and_wait
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import GrpcServer, create_channel, create_server

# Stops something that reads new work (a hub, a metrics endpoint); sync or async.
Stop = Callable[[], Awaitable[None] | None]


class Owned:
    """The gRPC server, background tasks, hubs, channels and Redis client of one process.

    What a server's `start()` creates it registers here; `close()` stops all of it in the order
    of STYLE rule 4 (see there). Only the first `close()` does anything.
    """

    def __init__(self, settings: CommonSettings, redis: Redis, *, owns_redis: bool) -> None:
        self.settings = settings
        self.redis = redis
        self.owns_redis = owns_redis
        self.grpc: GrpcServer | None = None
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stops: list[Stop] = []
        self._channels: list[grpc.aio.Channel] = []

    async def serve(
        self,
        listen: str,
        register: Callable[[grpc.aio.Server], None],
        service_names: Sequence[str],
    ) -> GrpcServer:
        """Create, bind and start the process's gRPC server (health and reflection included)."""
        self.grpc = await create_server(listen, register, service_names, self.settings)
        return self.grpc

    def spawn(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        """Run a background loop until shutdown cancels it."""
        self._tasks.append(asyncio.create_task(loop, name=name))

    def on_stop(self, stop: Stop) -> None:
        """Call `stop` after the loops are cancelled and before the server stops."""
        self._stops.append(stop)

    def channel(self, addr: str, *, intercepted: bool = True) -> grpc.aio.Channel:
        """A long-lived channel to a dependency, closed after the server stopped
        (`create_channel`)."""
        channel = create_channel(addr, self.settings, intercepted=intercepted)
        self._channels.append(channel)
        return channel

    async def close(self, release: Callable[[], Awaitable[None]]) -> bool:
        """Health NOT_SERVING; cancel the loops, then the `on_stop` callbacks in the order added
        (no new work is read); `server.stop(grace)`; `release()` (in-flight work); close the
        channels; close Redis if owned. False when already closed (or closing)."""
        if self.closed:
            return False
        self.closed = True
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        await cancel_and_wait(self._tasks)
        for stop in self._stops:
            stopping = stop()
            if stopping is not None:
                await stopping
        if self.grpc is not None:
            await self.grpc.stop(self.settings.shutdown_grace)
        await release()
        for channel in self._channels:
            await channel.close()
        if self.owns_redis:
            await self.redis.aclose()
        return True
