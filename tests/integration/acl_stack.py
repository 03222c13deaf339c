"""A redis-server with Hivewire's ACL file (default user off) and the in-process services on
it, each connected as its own user, the registry making the agents' users."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivewire.agent import Agent
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.client import Client
from hivewire.core.redis_users import ADMIN_ROLE, ensure_passwords, url_as, user_name
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_acl_cli import acl_lines, write_private
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.gateway.server import GatewayServer
from hivewire_services.registry.server import RegistryServer
from tests.integration.stack import LOOPBACK_ANY
from tests.integration.tls_redis import TlsFiles, TlsRedis
from tests.settings import StackSettings


@dataclass
class AclRedis:
    server: EmbeddedRedis
    namespace: str
    passwords: dict[str, str]

    def url(self, role: str) -> str:
        """The URL of a Hivewire user (registry, ..., admin)."""
        return url_as(self.server.url, user_name(self.namespace, role), self.passwords[role])

    def client(self, role: str = ADMIN_ROLE, **kw: Any) -> Redis:
        return create_redis(self.url(role), retries=0, **kw)


@contextlib.contextmanager
def acl_redis(
    data_dir: Path, namespace: str, tls: TlsFiles | None = None, *, appendonly: bool = False
) -> Iterator[AclRedis]:
    """With `tls`, the server speaks only TLS, and its URL carries what verifies it; with
    `appendonly`, every write is in the AOF (fsync always) before it is acknowledged."""
    passwords = ensure_passwords(data_dir / "redis-users.json")
    aclfile = data_dir / "users.acl"
    lines = acl_lines(namespace, passwords, fmt="aclfile")
    write_private(aclfile, "\n".join(lines) + "\n")
    server = (
        TlsRedis(data_dir / "redis", tls, aclfile=aclfile)
        if tls is not None
        else EmbeddedRedis(
            0, data_dir / "redis", appendonly=appendonly, appendfsync="always", aclfile=aclfile
        )
    )
    server.start()
    try:
        yield AclRedis(server, namespace, passwords)
    finally:
        server.stop()


@dataclass
class AclStack:
    redis: AclRedis
    settings: StackSettings
    registry: RegistryServer
    coordinator: CoordinatorServer
    gateway: GatewayServer
    agents: list[Agent] = field(default_factory=list)

    @property
    def gateway_addr(self) -> str:
        return self.settings.gateway_addr

    def client(self) -> Client:
        return Client(self.gateway_addr, timeout=10.0)

    def agent(self, name: str, **kw: Any) -> Agent:
        """An agent with no Redis user in its URL: the registry gives it one."""
        agent = Agent(
            name,
            registry_addr=self.settings.registry_addr,
            gateway_addr=self.gateway_addr,
            redis_url=self.redis.server.url,
            drain_grace=2.0,
            **kw,
        )
        self.agents.append(agent)
        return agent


@contextlib.asynccontextmanager
async def acl_stack(redis: AclRedis, settings: StackSettings) -> AsyncIterator[AclStack]:
    """Registry, coordinator and gateway on port 0, each as its own Redis user."""
    settings = dataclasses.replace(settings, shutdown_grace=0.5)
    async with contextlib.AsyncExitStack() as exits:
        registry = RegistryServer(
            dataclasses.replace(settings.registry(), redis_url=redis.url("registry"))
        )
        exits.push_async_callback(registry.shutdown)
        port = await registry.start(LOOPBACK_ANY)
        settings = dataclasses.replace(settings, registry_addr=f"127.0.0.1:{port}")
        coordinator = CoordinatorServer(
            dataclasses.replace(settings.coordinator(), redis_url=redis.url("coordinator"))
        )
        exits.push_async_callback(coordinator.shutdown)
        port = await coordinator.start(LOOPBACK_ANY)
        settings = dataclasses.replace(settings, coordinator_addr=f"127.0.0.1:{port}")
        gateway = GatewayServer(
            dataclasses.replace(settings.gateway(), redis_url=redis.url("gateway"))
        )
        exits.push_async_callback(gateway.shutdown)
        port = await gateway.start(LOOPBACK_ANY)
        settings = dataclasses.replace(settings, gateway_addr=f"127.0.0.1:{port}")
        stack = AclStack(redis, settings, registry, coordinator, gateway)

        async def stop_agents() -> None:
            for agent in stack.agents:
                await agent.stop(grace=2.0)

        exits.push_async_callback(stop_agents)
        yield stack
