"""Wiring of the registry: gRPC server, change hub, lease sweeper; ordered start and shutdown."""

from __future__ import annotations

import asyncio
import logging

import grpc

from hivewire.v1 import registry_pb2, registry_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import cancel_and_wait
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.server import GrpcServer, create_server
from hivewire_services.registry.config import RegistrySettings, load_registry_settings
from hivewire_services.registry.service import RegistryServicer
from hivewire_services.registry.store import AgentStore
from hivewire_services.registry.sweeper import LeaseSweeper
from hivewire_services.registry.watch import ChangeHub

logger = logging.getLogger(__name__)

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


class RegistryServer(ServiceProcess):
    """The registry process: `await start()` returns the bound port, `await shutdown()` stops it."""

    def __init__(self, settings: RegistrySettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self._owns_redis = redis is None
        self.redis: Redis = redis if redis is not None else create_redis(settings.redis_url)
        self.keys = Keys(settings.namespace)
        self.store = AgentStore(self.redis, self.keys, settings)
        self.hub = ChangeHub(
            self.redis,
            self.keys,
            self.store,
            settings.stream_queue_size,
            ready_timeout=settings.rpc_timeout,
        )
        self.sweeper = LeaseSweeper(
            self.store, settings.lease_sweep_interval, outage_grace=settings.lease_seconds / 2
        )
        self._server: GrpcServer | None = None
        self._sweeper_task: asyncio.Task[None] | None = None
        self._stopped = False
        self.metrics = ServiceMetrics(
            settings.redis_url,
            self.keys,
            settings.registry_metrics_port,
            settings.metrics_host,
            ("agents",),
        )

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("registry server is not started")
        return self._server.port

    async def start(self, listen: str | None = None) -> int:
        address = listen or self.settings.listen_address
        servicer = RegistryServicer(self.store, self.hub, self.keys, self.settings)

        def register(server: grpc.aio.Server) -> None:
            registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)

        self.hub.start()
        self._sweeper_task = asyncio.create_task(self.sweeper.run(), name="registry-lease-sweeper")
        try:
            self._server = await create_server(address, register, [SERVICE_NAME], self.settings)
        except BaseException:
            await self.shutdown()
            raise
        self.metrics.start()
        logger.info("registry listening on port %d", self._server.port)
        return self._server.port

    async def shutdown(self) -> None:
        """Ordered and idempotent: NOT_SERVING, stop loops and watches, stop the server, Redis."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            await self._server.set_serving(False)
        await cancel_and_wait([self._sweeper_task])
        await self.hub.stop()
        self.metrics.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace)
        if self._owns_redis:
            await self.redis.aclose()
        logger.info("registry stopped")


def main() -> None:
    serve("registry", RegistryServer, load_registry_settings())
