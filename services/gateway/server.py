"""Gateway wiring: channels to the coordinator and registry, the events hub, the gRPC server."""

from __future__ import annotations

import logging
from typing import cast

import grpc

from hivewire.v1 import coordinator_pb2_grpc, gateway_pb2, gateway_pb2_grpc, registry_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import DASHBOARD_SUBSCRIBERS
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.server import GrpcServer, create_channel, create_server
from hivewire_services.gateway.config import GatewaySettings, load_gateway_settings
from hivewire_services.gateway.events.hub import EventsHub
from hivewire_services.gateway.service import GatewayServicer

logger = logging.getLogger(__name__)

# Taken from gateway_pb2 so its descriptor is loaded: gateway_pb2_grpc alone does not load it
# (the file defines only the service), and reflection (grpcurl describe) would not find it.
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


class GatewayServer(ServiceProcess):
    """The gateway process: `await start()` returns the bound port; `shutdown()` is idempotent."""

    def __init__(self, settings: GatewaySettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self._redis = redis
        self._owns_redis = redis is None
        self._coordinator_channel: grpc.aio.Channel | None = None
        self._registry_channel: grpc.aio.Channel | None = None
        self.hub: EventsHub | None = None
        self._server: GrpcServer | None = None
        self._stopped = False
        self.metrics = ServiceMetrics(
            settings.redis_url,
            Keys(settings.namespace),
            settings.gateway_metrics_port,
            settings.metrics_host,
            (),
        )

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("gateway is not started")
        return self._server.port

    async def start(self, listen: str | None = None) -> int:
        settings = self.settings
        if self._redis is None:
            self._redis = create_redis(settings.redis_url)
        self._coordinator_channel = create_channel(settings.coordinator_addr, settings)
        self._registry_channel = create_channel(settings.registry_addr, settings)
        self.hub = EventsHub(
            self._redis,
            Keys(settings.namespace).events,
            settings.stream_queue_size,
            max_subscribers=settings.stream_max_subscribers,
        )
        self.hub.start()
        servicer = GatewayServicer(
            settings,
            cast(
                "coordinator_pb2_grpc.CoordinatorServiceAsyncStub",
                coordinator_pb2_grpc.CoordinatorServiceStub(self._coordinator_channel),
            ),
            cast(
                "registry_pb2_grpc.RegistryServiceAsyncStub",
                registry_pb2_grpc.RegistryServiceStub(self._registry_channel),
            ),
            self.hub,
        )

        def register(server: grpc.aio.Server) -> None:
            gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)

        self._server = await create_server(
            listen or settings.listen_address, register, [SERVICE_NAME], settings
        )
        hub = self.hub
        DASHBOARD_SUBSCRIBERS.set_function(lambda: hub.subscriber_count)
        self.metrics.start()
        logger.info("gateway listening on port %d", self._server.port)
        return self._server.port

    async def shutdown(self) -> None:
        """Health NOT_SERVING, stop the hub (streams end with a cursor), stop the server,
        close channels, close Redis."""
        if self._stopped:
            return
        self._stopped = True
        if self._server is not None:
            await self._server.set_serving(False)
        if self.hub is not None:
            await self.hub.stop()
        self.metrics.close()
        if self._server is not None:
            await self._server.stop(self.settings.shutdown_grace)
        for channel in (self._coordinator_channel, self._registry_channel):
            if channel is not None:
                await channel.close()
        if self._redis is not None and self._owns_redis:
            await self._redis.aclose()
        logger.info("gateway stopped")


def main() -> None:
    serve("gateway", GatewayServer, load_gateway_settings())
