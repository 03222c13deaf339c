"""An in-process stack for workflow tests: real registry, coordinator, gateway and SDK agents."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from hivewire.agent import Agent, TaskContext
from hivewire.cli.embedded_redis import free_port
from hivewire.client import Client
from hivewire_services.common.loops import cancel_and_wait
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.gateway.server import GatewayServer
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings

Handler = Callable[[TaskContext], Awaitable[Any] | Any]


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.registry = RegistryServer(settings.registry())
        self.coordinator: CoordinatorServer | None = CoordinatorServer(settings.coordinator())
        self.gateway = GatewayServer(settings.gateway())
        self.client = Client(settings.gateway_addr, timeout=10.0)
        self.agents: list[Agent] = []
        self._runs: list[asyncio.Task[None]] = []

    async def start(self, with_coordinator: bool = True) -> None:
        await self.registry.start()
        if with_coordinator and self.coordinator is not None:
            await self.coordinator.start()
        else:
            self.coordinator = None
        await self.gateway.start()

    async def agent(
        self, name: str, handlers: Mapping[str, Handler], concurrency: int = 8
    ) -> Agent:
        agent = Agent(
            name,
            max_concurrency=concurrency,
            registry_addr=self.settings.registry_addr,
            redis_url=self.settings.redis_url,
            drain_grace=2.0,
        )
        for capability, fn in handlers.items():
            agent.add_handler(capability, fn)
        await agent.start()
        self.agents.append(agent)
        self._runs.append(asyncio.create_task(agent.run()))
        await self.wait_agents(len(self.agents))
        return agent

    async def wait_agents(self, n: int) -> None:
        """Until the coordinator's cache sees n agents (the registry streams them)."""
        for _ in range(200):
            if self.coordinator is None or self.coordinator.scheduler is None:
                return
            if len(self.coordinator.scheduler.cache.agents) >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"coordinator never saw {n} agents")

    async def stop(self) -> None:
        for agent in self.agents:
            await agent.stop(grace=2.0)
        await cancel_and_wait(self._runs)
        await self.client.close()
        await self.gateway.shutdown()
        if self.coordinator is not None:
            await self.coordinator.shutdown()
        await self.registry.shutdown()


def stack_settings(settings: StackSettings, **overrides: Any) -> StackSettings:
    return dataclasses.replace(
        settings,
        registry_addr=f"127.0.0.1:{free_port()}",
        coordinator_addr=f"127.0.0.1:{free_port()}",
        gateway_addr=f"127.0.0.1:{free_port()}",
        shutdown_grace=0.5,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running_stack(
    settings: StackSettings, with_coordinator: bool = True
) -> AsyncIterator[Stack]:
    """A started Stack on free ports (the coordinator optional), stopped afterwards."""
    s = Stack(stack_settings(settings))
    await s.start(with_coordinator)
    try:
        yield s
    finally:
        await s.stop()
