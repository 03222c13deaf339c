"""Gateway wiring: channels to the coordinator and registry, the events hub, the gRPC server."""

from __future__ import annotations

import logging
from typing import cast

import grpc

from hivewire.core.result_writer import ResultWriter
from hivewire.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    coordinator_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    registry_pb2_grpc,
)
from hivewire_services.common.auth.audit import Audit
from hivewire_services.common.auth.static_tokens import import_static_tokens
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import AGENT_STREAMS, DASHBOARD_SUBSCRIBERS
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.server import outbound_metadata
from hivewire_services.gateway.agents.connection import AgentDeps
from hivewire_services.gateway.agents.identity import Registrar
from hivewire_services.gateway.agents.inbox import BLOCK_MS
from hivewire_services.gateway.agents.service import AgentServicer
from hivewire_services.gateway.auth_service import AuthServicer
from hivewire_services.gateway.config import GatewaySettings, load_gateway_settings
from hivewire_services.gateway.events.hub import EventsHub
from hivewire_services.gateway.output import FOLLOW_BLOCK_S, OutputReader
from hivewire_services.gateway.service import GatewayServicer
from hivewire_services.gateway.upstream import Direct

logger = logging.getLogger(__name__)

# Taken from gateway_pb2 so its descriptor is loaded: gateway_pb2_grpc alone does not load it
# (the file defines only the service), and reflection (grpcurl describe) would not find it.
SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name
AGENT_SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
AUTH_SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name


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

    def _direct(self) -> Direct:
        """Stubs on channels without client interceptors for forwarded unary calls."""
        settings = self.settings
        return Direct(
            cast(
                "coordinator_pb2_grpc.CoordinatorServiceAsyncStub",
                coordinator_pb2_grpc.CoordinatorServiceStub(
                    self.owned.channel(settings.coordinator_addr, intercepted=False)
                ),
            ),
            cast(
                "registry_pb2_grpc.RegistryServiceAsyncStub",
                registry_pb2_grpc.RegistryServiceStub(
                    self.owned.channel(settings.registry_addr, intercepted=False)
                ),
            ),
            outbound_metadata(settings),
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
        registry = cast(
            "registry_pb2_grpc.RegistryServiceAsyncStub",
            registry_pb2_grpc.RegistryServiceStub(registry_channel),
        )
        servicer = GatewayServicer(
            settings,
            cast(
                "coordinator_pb2_grpc.CoordinatorServiceAsyncStub",
                coordinator_pb2_grpc.CoordinatorServiceStub(coordinator_channel),
            ),
            registry,
            hub,
            self.output,
            self._direct(),
        )
        self.submits = servicer.submits  # its batch count shows the coalescing (tests)
        agents = self._agent_service(registry)
        keys = Keys(settings.namespace)
        tokens = AuthServicer(TokenStore(self.redis, keys), Audit(self.redis, keys, SERVICE_NAME))

        def register(server: grpc.aio.Server) -> None:
            gateway_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, server)
            agent_service_pb2_grpc.add_AgentServiceServicer_to_server(agents, server)
            auth_pb2_grpc.add_AuthServiceServicer_to_server(tokens, server)

        names = [SERVICE_NAME, AGENT_SERVICE_NAME, AUTH_SERVICE_NAME]
        if settings.auth_tokens_file:  # before serving: a healthy gateway knows every token
            await import_static_tokens(self.redis, keys, settings.auth_tokens_file)
        server = await self.owned.serve(listen, register, names)
        DASHBOARD_SUBSCRIBERS.set_function(lambda: hub.subscriber_count)
        AGENT_STREAMS.set_function(lambda: agents.connected)
        self.metrics.start()
        self.owned.on_stop(self.metrics.close)
        logger.info("gateway listening on port %d", server.port)
        return server.port

    def _agent_service(self, registry: registry_pb2_grpc.RegistryServiceAsyncStub) -> AgentServicer:
        """AgentService: inbox reads on their own connections (one blocking read per agent
        stream), results through one batching writer. Its streams end before the server stops."""
        settings = self.settings
        inbox_redis = create_redis(
            settings.redis_url,
            socket_timeout=settings.rpc_timeout + BLOCK_MS / 1000,
            max_connections=settings.agent_max_connections + 1,
        )
        writer = ResultWriter(self.redis)
        deps = AgentDeps(
            Registrar(registry, Keys(settings.namespace), settings.rpc_timeout),
            inbox_redis,
            writer,
            settings.rpc_timeout,
        )
        agents = AgentServicer(deps, settings.agent_max_connections)
        self.owned.on_stop(agents.stop)
        self.owned.on_stop(writer.close)
        self.owned.on_stop(inbox_redis.aclose)
        return agents

    async def _release(self) -> None:
        await self.follow_redis.aclose()


def main() -> None:
    serve("gateway", GatewayServer, load_gateway_settings())
