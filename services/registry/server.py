"""Wiring of the registry: gRPC server, change hub, lease sweeper; ordered start and shutdown."""

from __future__ import annotations

import logging

import grpc

from hivewire.v1 import registry_pb2, registry_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.registry.agent_users import AgentUsers
from hivewire_services.registry.config import RegistrySettings, load_registry_settings
from hivewire_services.registry.service import RegistryServicer
from hivewire_services.registry.store import AgentStore
from hivewire_services.registry.sweeper import LeaseSweeper
from hivewire_services.registry.watch import ChangeHub

logger = logging.getLogger(__name__)

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name


class RegistryServer(ServiceProcess[RegistrySettings]):
    """The registry process: `await start()` returns the bound port, `await shutdown()` stops it."""

    name = "registry"
    metrics: ServiceMetrics

    def __init__(self, settings: RegistrySettings, redis: Redis | None = None) -> None:
        super().__init__(settings, redis)
        self.keys = Keys(settings.namespace)
        self.store = AgentStore(self.redis, self.keys, settings)
        self.hub = ChangeHub(
            self.redis,
            self.keys,
            self.store,
            settings.stream_queue_size,
            ready_timeout=settings.rpc_timeout,
        )
        self.agent_users = AgentUsers(self.redis, self.keys) if settings.agent_redis_users else None
        self.sweeper = LeaseSweeper(
            self.store,
            settings.lease_seconds,
            settings.lease_sweep_interval,
            outage_grace=settings.lease_seconds / 2,
            probe_recovered_ms=self.redis_recovered_ms,
            on_offline=self.agent_users.remove if self.agent_users is not None else None,
        )
        self.metrics = ServiceMetrics(
            settings.redis_url,
            self.keys,
            settings.registry_metrics_port,
            settings.metrics_host,
            ("agents",),
        )

    async def _start(self, listen: str) -> int:
        servicer = RegistryServicer(
            self.store, self.hub, self.keys, self.settings, self.agent_users
        )

        def register(server: grpc.aio.Server) -> None:
            registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, server)

        self.hub.start()
        self.owned.on_stop(self.hub.stop)
        self.owned.spawn(self.sweeper.run(), "registry-lease-sweeper")
        if self.agent_users is not None:
            self.owned.spawn(self.agent_users.run(), "registry-agent-users")
        server = await self.owned.serve(listen, register, [SERVICE_NAME])
        self.metrics.start()
        self.owned.on_stop(self.metrics.close)
        logger.info("registry listening on port %d", server.port)
        return server.port


def main() -> None:
    serve("registry", RegistryServer, load_registry_settings())
