"""An in-process stack for tests: registry, coordinator and gateway on port 0, plus SDK agents."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from hivewire.agent import Agent
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.gateway.server import GatewayServer
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings


@dataclass
class Stack:
    settings: StackSettings
    registry: RegistryServer
    coordinator: CoordinatorServer
    gateway: GatewayServer
    agents: list[Agent] = field(default_factory=list)

    @property
    def gateway_addr(self) -> str:
        return f"127.0.0.1:{self.gateway.port}"

    async def agent(self, name: str, setup: Callable[[Agent], None], **kwargs: object) -> Agent:
        """Start an SDK agent against this stack; stopped when the stack ends."""
        agent = Agent(
            name,
            registry_addr=self.settings.registry_addr,
            redis_url=self.settings.redis_url,
            **kwargs,  # type: ignore[arg-type]
        )
        setup(agent)
        await agent.start()
        self.agents.append(agent)
        return agent

    async def restart_gateway(self) -> None:
        """Stop the gateway and start a new one on the same port."""
        port = self.gateway.port
        await self.gateway.shutdown()
        self.gateway = GatewayServer(self.settings.gateway())
        await self.gateway.start(f"127.0.0.1:{port}")


@asynccontextmanager
async def running_stack(settings: StackSettings) -> AsyncIterator[Stack]:
    registry = RegistryServer(settings.registry())
    registry_port = await registry.start("127.0.0.1:0")
    settings = dataclasses.replace(settings, registry_addr=f"127.0.0.1:{registry_port}")
    coordinator = CoordinatorServer(settings.coordinator())
    coordinator_port = await coordinator.start("127.0.0.1:0")
    settings = dataclasses.replace(settings, coordinator_addr=f"127.0.0.1:{coordinator_port}")
    gateway = GatewayServer(settings.gateway())
    gateway_port = await gateway.start("127.0.0.1:0")
    settings = dataclasses.replace(settings, gateway_addr=f"127.0.0.1:{gateway_port}")
    stack = Stack(settings, registry, coordinator, gateway)
    try:
        yield stack
    finally:
        for agent in stack.agents:
            await agent.stop(grace=2)
        await stack.gateway.shutdown()
        await coordinator.shutdown()
        await registry.shutdown()


async def eventually(check: Callable[[], object], limit: float = 15.0) -> None:
    """Poll `check` (sync or async) until it is truthy; AssertionError after `limit` seconds."""
    deadline = time.monotonic() + limit
    for _ in itertools.count():
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit}s")
        await asyncio.sleep(0.02)


def subscribers(stack: Stack) -> int:
    return stack.gateway.hub.subscriber_count if stack.gateway.hub else 0
