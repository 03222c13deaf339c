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
from hivewire_services.gateway.config import GatewaySettings, load_gateway_settings
from hivewire_services.gateway.events.hub import EventsHub
from hivewire_services.gateway.output import FOLLOW_BLOCK_S, OutputReader
from hivewire_services.gateway.service import GatewayServicer

logger = logging.getLogger(__name__)

# Taken from gateway_pb2 so its descriptor is loaded: gateway_pb2_grpc alone does not load it
# (the file defines only the service), and reflection (grpcurl describe) would not find it.
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name


class GatewayServer(ServiceProcess[GatewaySettings]):
    """The gateway process: `await start()` returns the bound port; `shutdown()` is idempotent."""

    name = "gateway"
    metrics: ServiceMetrics

    def __init__(self, settings: GatewaySettings, redis: Redis | None = None) -> None:
        super().__init__(settings, redis)
        self.hub: EventsHub | None = None
        # Output followers block in XREAD: on connections of their own, one each at most.
        self.follow_redis = create_redis(
            settings.redis_url,
            socket_timeout=settings.rpc_timeout + FOLLOW_BLOCK_S,
            max_connections=max(1, settings.output_max_followers),
        )
        self.output = OutputReader(
            self.redis, self.follow_redis, Keys(settings.namespace), settings.output_max_followers
        )
        self.metrics = ServiceMetrics(
            settings.redis_url,
            Keys(settings.namespace),
            settings.gateway_metrics_port,
            settings.metrics_host,
            (),
        )

    async def _start(self, listen: str) -> int:
        settings = self.settings
        coordinator_channel = self.owned.channel(settings.coordinator_addr)
        registry_channel = self.owned.channel(settings.registry_addr)
        # Stopping the hub ends every event stream with a cursor, before the server stops.
        hub = self.hub = EventsHub(
            self.redis,
            Keys(settings.namespace).events,
            settings.stream_queue_size,
            max_subscribers=settings.stream_max_subscribers,
        )
        hub.start()
        self.owned.on_stop(hub.stop)
        self.owned.on_stop(self.output.stop)
        servicer = GatewayServicer(
            settings,
            cast(
                "coordinator_pb2_grpc.CoordinatorServiceAsyncStub",
                coordinator_pb2_grpc.CoordinatorServiceStub(coordinator_channel),
            ),
            cast(
                "registry_pb2_grpc.RegistryServiceAsyncStub",
                registry_pb2_grpc.RegistryServiceStub(registry_channel),
            ),
            hub,
            self.output,
        )

        def register(server: grpc.aio.Server) -> None:
            gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)

        server = await self.owned.serve(listen, register, [SERVICE_NAME])
        DASHBOARD_SUBSCRIBERS.set_function(lambda: hub.subscriber_count)
        self.metrics.start()
        self.owned.on_stop(self.metrics.close)
        logger.info("gateway listening on port %d", server.port)
        return server.port

    async def _release(self) -> None:
        await self.follow_redis.aclose()


def main() -> None:
    serve("gateway", GatewayServer, load_gateway_settings())
