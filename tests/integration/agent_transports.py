"""The agent SDK tests run over each transport: `redis` (direct) and `grpc` (a real gateway)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from hivewire_services.gateway.server import GatewayServer
from tests.settings import StackSettings
from tests.up import refusing_addr

TRANSPORTS = ("redis", "grpc")


@contextlib.asynccontextmanager
async def transport_options(
    transport: str, settings: StackSettings, registry_addr: str
) -> AsyncIterator[dict[str, Any]]:
    """Agent keyword arguments for `transport`. For grpc: a gateway on port 0 in front of the
    registry at `registry_addr`, and a Redis URL where nothing listens (the agent needs none)."""
    if transport == "redis":
        yield {
            "transport": "redis",
            "registry_addr": registry_addr,
            "redis_url": settings.redis_url,
        }
        return
    gateway = GatewayServer(dataclasses.replace(settings, registry_addr=registry_addr).gateway())
    port = await gateway.start("127.0.0.1:0")
    try:
        with refusing_addr() as nowhere:
            yield {
                "transport": "grpc",
                "gateway_addr": f"127.0.0.1:{port}",
                "registry_addr": nowhere,
                "redis_url": f"redis://{nowhere}/0",
            }
    finally:
        await gateway.shutdown()
