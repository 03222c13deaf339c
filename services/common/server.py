"""One server builder for every service: grpc.aio, health, reflection, error mapping, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from hivewire.core.credentials import bearer, bearer_interceptors
from hivewire.core.telemetry import shutdown_tracing
from hivewire.core.tls import (
    PlaintextBindError,
    aio_channel,
    bind,
    check_plaintext_bind,
    is_loopback,
)
from hivewire.core.tracing import client_interceptors, trace_metadata
from hivewire_services.common.auth.service import server_auth
from hivewire_services.common.config import CommonSettings, env_name
from hivewire_services.common.generic_handlers import generic_only
from hivewire_services.common.inflight import InFlightLimitInterceptor
from hivewire_services.common.interceptors import (
    ChainInterceptor,
    ErrorMappingInterceptor,
    RewrapInterceptor,
)
from hivewire_services.common.principal import LOCAL, ON_BEHALF_OF_METADATA, current
from hivewire_services.common.rate_limit import PrincipalLimitInterceptor, PrincipalLimits
from hivewire_services.common.redis_health import RedisGate
from hivewire_services.common.rpc_telemetry import TelemetryServerInterceptor

logger = logging.getLogger(__name__)

KEEPALIVE_SERVER_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
]


def channel_options(settings: CommonSettings) -> list[tuple[str, int]]:
    """Options for long-lived client channels: keepalive and message size limits."""
    return [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
    ]


def _on_behalf_of() -> list[tuple[str, str]]:
    """Inside an RPC, the principal it runs as; outside one (background work), none: the call
    then acts as the service itself."""
    principal = current()
    return [] if principal is LOCAL else [(ON_BEHALF_OF_METADATA, principal.encode())]


def create_channel(
    addr: str, settings: CommonSettings, *, intercepted: bool = True
) -> grpc.aio.Channel:
    """One long-lived channel per dependency per process; close it on shutdown. With
    authentication on, every call carries the service token and the principal it acts for.

    Without `intercepted` the channel has no client interceptors: its callers pass
    `outbound_metadata(settings)()` with each call themselves (an intercepted grpc.aio call
    costs an asyncio task and several awaits more, on every call).
    """
    interceptors: list[grpc.aio.ClientInterceptor] = []
    if intercepted:
        interceptors += client_interceptors()
        if settings.auth_enabled:
            interceptors += bearer_interceptors(settings.service_credential, _on_behalf_of)
    return aio_channel(
        addr, settings.tls, options=channel_options(settings), interceptors=interceptors
    )


def outbound_metadata(settings: CommonSettings) -> Callable[[], list[tuple[str, str]]]:
    """What the interceptors of `create_channel` add to a call, as metadata to pass with a call
    on a channel without them: the current trace context and, with authentication on, the
    service token and the principal the call acts for. No CLIENT span is made."""
    credential = settings.service_credential if settings.auth_enabled else ""
    token = bearer(credential) if credential else None

    def metadata() -> list[tuple[str, str]]:
        out = trace_metadata()
        if token is not None:
            out.append(token)
            out += _on_behalf_of()
        return out

    return metadata


def check_transport(listen: str, settings: CommonSettings) -> None:
    """Raise (TlsError, PlaintextBindError, ValueError) unless a server may listen at `listen`
    with these settings: TLS settings that work and whose files are readable; plaintext only on
    loopback unless HIVEWIRE_INSECURE allows it; positive concurrent RPC and stream limits;
    the token files it names readable."""
    for limit in ("max_concurrent_rpcs", "max_concurrent_streams"):
        if getattr(settings, limit) < 1:
            raise ValueError(f"{env_name(limit)}={getattr(settings, limit)} must be at least 1")
    rate, burst = settings.rate_limit()
    if rate < 0 or burst < 0 or settings.max_streams_per_principal < 0:
        raise ValueError(
            "rate limits (HIVEWIRE_GATEWAY_RATE_LIMIT_RPS, _BURST) and "
            f"{env_name('max_streams_per_principal')} must not be negative"
        )
    tls = settings.tls
    check_plaintext_bind(listen, tls, insecure=settings.insecure, allow="HIVEWIRE_INSECURE=1")
    if not (settings.auth_enabled or settings.insecure or is_loopback(listen)):
        raise PlaintextBindError(
            f"refusing to listen on {listen} without authentication: other machines can reach "
            f"it; set {env_name('auth')}=tokens (docs/security.md, Tokens and roles), listen on "
            "127.0.0.1, or allow it explicitly with HIVEWIRE_INSECURE=1"
        )
    tls.server_credentials()
    tls.channel_credentials()
    settings.check_files()


@dataclass
class GrpcServer:
    """A started grpc.aio server with its health servicer.

    Health is SERVING when the owner wants it to serve (`set_serving`) and, if there is a
    Redis gate, Redis is reachable.
    """

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: Sequence[str]
    redis_gate: RedisGate | None = None
    # The load shedding limiter (its gauges say how many calls are in flight).
    inflight: InFlightLimitInterceptor | None = None
    _wanted: bool = True
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        self._wanted = serving
        await self._publish()

    async def _publish(self) -> None:
        serving = self._wanted and (self.redis_gate is None or self.redis_gate.available)
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def on_redis_change(self, available: bool) -> None:
        await self._publish()

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.redis_gate is not None:
            await self.redis_gate.close()
        for close in self.closers:
            await close()


async def create_server(
    listen: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    settings: CommonSettings,
    *,
    watch_redis: bool = True,
) -> GrpcServer:
    """Build, bind and start a server; `listen` may use port 0 (the bound port is returned).

    With `watch_redis`, health follows Redis reachability and RPCs fail fast while it is lost.
    TLS as the settings say (`check_transport`).
    """
    check_transport(listen, settings)
    gate = (
        RedisGate(
            settings.redis_url,
            interval=settings.redis_probe_interval,
            timeout=settings.redis_probe_timeout,
        )
        if watch_redis
        else None
    )
    inflight = InFlightLimitInterceptor(
        settings.max_concurrent_rpcs, settings.max_concurrent_streams
    )
    auth = server_auth(settings, service_names[0] if service_names else "")
    layers: list[RewrapInterceptor] = [
        TelemetryServerInterceptor(),
        inflight,
        ErrorMappingInterceptor(gate),
    ]
    if auth is not None:
        layers.append(auth.interceptor)  # denials are mapped like any error
    # Inside what binds the caller's principal: limits count per principal.
    layers.append(
        PrincipalLimitInterceptor(
            PrincipalLimits(*settings.rate_limit(), settings.max_streams_per_principal)
        )
    )
    server = grpc.aio.server(
        interceptors=[ChainInterceptor(layers)],
        options=[
            *KEEPALIVE_SERVER_OPTIONS,
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
        ],
    )
    handlers = generic_only(server)
    register(handlers)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, handlers)
    # Reflection checks for a grpc.aio.Server (its one method stays registered).
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = bind(server, listen, settings.tls)
    if port == 0:
        if gate is not None:
            await gate.close()
        if auth is not None:
            await auth.close()
        raise OSError(f"could not bind {listen}")
    await server.start()
    grpc_server = GrpcServer(server, port, health_servicer, service_names, gate, inflight=inflight)
    if auth is not None:
        grpc_server.closers.append(auth.close)
    if gate is not None:
        gate.available = await gate.probe()  # a service started without Redis is not serving
        if gate.refused is not None:  # a Redis that may evict keys
            await grpc_server.stop(0)
            raise gate.refused
    await grpc_server.set_serving(True)
    if gate is not None:
        gate.on_change = grpc_server.on_redis_change
        gate.start()
    return grpc_server


async def run_until_signal(
    start: Callable[[], Awaitable[object]],
    shutdown: Callable[[], Awaitable[None]],
    stop: asyncio.Event | None = None,
) -> None:
    """Start, wait for SIGTERM or SIGINT (or `stop` set), then run the (idempotent) ordered
    shutdown."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await start()
        await stop.wait()
        logger.info("signal received, shutting down")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        await shutdown()
        shutdown_tracing()  # last: spans of the shutdown itself are flushed too


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a service's main coroutine on uvloop when available."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(main())
        return
    uvloop.run(main())
