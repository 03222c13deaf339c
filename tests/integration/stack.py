"""The one in-process stack for integration tests: registry, coordinator and gateway on port 0.

`running_stack(settings, ...)` starts what the options ask for (each server binds port 0 and
the settings of the next one get the bound address), `make_stack` in conftest.py is the
factory fixture over it; both stop everything they started, agents first.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grpc_health.v1 import health_pb2

from hivewire.agent import Agent, TaskContext
from hivewire.client import Client
from hivewire.v1 import task_pb2
from hivewire_services.common.submission import validate_task
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.gateway.server import GatewayServer
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings
from tests.waiting import eventually, health_reaches

Handler = Callable[[TaskContext], Awaitable[Any] | Any]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LOOPBACK_ANY = "127.0.0.1:0"


@dataclass
class Stack:
    settings: StackSettings
    registry: RegistryServer
    coordinator: CoordinatorServer | None
    gateway: GatewayServer | None
    agents: list[Agent] = field(default_factory=list)
    _started: int = 0
    _client: Client | None = None

    @property
    def client(self) -> Client:
        """One SDK client on the gateway, closed with the stack."""
        if self._client is None:
            self._client = Client(self.gateway_addr, timeout=10.0)
        return self._client

    async def close_client(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def gateway_addr(self) -> str:
        return self.settings.gateway_addr

    def addrs(self) -> dict[str, str]:
        """Address of each running service, by name."""
        running = {
            "registry": self.registry,
            "coordinator": self.coordinator,
            "gateway": self.gateway,
        }
        return {name: getattr(self.settings, f"{name}_addr") for name, s in running.items() if s}

    def subscribers(self) -> int:
        """Event stream subscribers of the gateway's hub."""
        hub = self.gateway.hub if self.gateway else None
        return hub.subscriber_count if hub else 0

    def new_agent(self, name: str, handlers: Mapping[str, Handler] = {}, **kw: Any) -> Agent:
        """An SDK agent for this stack, not started (stopped with the stack if it is)."""
        kw = {"max_concurrency": 8, "drain_grace": 2.0, **kw}
        if kw.get("transport") == "grpc":
            kw.setdefault("gateway_addr", self.settings.gateway_addr)
        agent = Agent(
            name, registry_addr=self.settings.registry_addr, redis_url=self.settings.redis_url, **kw
        )
        for capability, fn in handlers.items():
            agent.add_handler(capability, fn)
        self.agents.append(agent)
        return agent

    async def agent(
        self,
        name: str,
        handlers: Mapping[str, Handler] = {},
        *,
        setup: Callable[[Agent], None] | None = None,
        **kw: Any,
    ) -> Agent:
        """Start an agent (handlers by capability, or a `setup` that adds them) and wait until
        the coordinator's live view has it, so work submitted next can be assigned."""
        agent = self.new_agent(name, handlers, **kw)
        if setup is not None:
            setup(agent)
        await agent.start()
        self._started += 1
        await self.wait_agents(self._started)
        return agent

    async def wait_agents(self, n: int) -> None:
        """Until the coordinator's cache sees at least n agents (the registry streams them)."""
        coordinator = self.coordinator
        if coordinator is None:
            return

        def seen() -> bool:
            scheduler = coordinator.scheduler
            return scheduler is not None and len(scheduler.cache.agents) >= n

        await eventually(seen, message=f"the coordinator seeing {n} agents")

    async def submit(self, capability: str, n: int = 1, **kw: Any) -> list[task_pb2.Task]:
        """Submit straight to the coordinator's store (no gRPC hop)."""
        assert self.coordinator is not None
        reqs = [task_pb2.SubmitTaskRequest(capability=capability, **kw) for _ in range(n)]
        valid = [validate_task(r, self.settings) for r in reqs]
        return await self.coordinator.store.submit(valid)

    async def states(self, task_ids: list[str]) -> list[int]:
        assert self.coordinator is not None
        return [(await self.coordinator.store.get(t)).state for t in task_ids]

    async def restart_gateway(self) -> None:
        """Stop the gateway and start a new one on the same address."""
        assert self.gateway is not None
        await self.gateway.shutdown()
        self.gateway = GatewayServer(self.settings.gateway())
        await self.gateway.start(self.settings.gateway_addr)

    async def start_gateway(self, **overrides: Any) -> None:
        """Start the gateway on port 0 (`overrides` replace settings, e.g. the coordinator's
        address when the test runs the coordinator itself)."""
        settings = dataclasses.replace(self.settings, **overrides)
        self.gateway = GatewayServer(settings.gateway())
        port = await self.gateway.start(LOOPBACK_ANY)
        self.settings = dataclasses.replace(settings, gateway_addr=f"127.0.0.1:{port}")

    async def stop_gateway(self) -> None:
        if self.gateway is not None:
            await self.gateway.shutdown()

    async def stop_agents(self) -> None:
        for agent in self.agents:
            await agent.stop(grace=2.0)

    async def wait_health(self, status: int, within: float = 30.0) -> None:
        """Until every running service reports `status` on grpc.health.v1."""
        await health_reaches(self.addrs(), status, within)


@contextlib.asynccontextmanager
async def running_stack(
    settings: StackSettings, *, coordinator: bool = True, gateway: bool = True, **overrides: Any
) -> AsyncIterator[Stack]:
    """Registry, then (optionally) coordinator and gateway, each on port 0; `overrides` replace
    settings fields. Everything started is stopped in reverse order, agents first."""
    settings = dataclasses.replace(settings, **{"shutdown_grace": 0.5, **overrides})
    async with contextlib.AsyncExitStack() as exits:
        registry = RegistryServer(settings.registry())
        exits.push_async_callback(registry.shutdown)
        port = await registry.start(LOOPBACK_ANY)
        settings = dataclasses.replace(settings, registry_addr=f"127.0.0.1:{port}")
        coord: CoordinatorServer | None = None
        if coordinator:
            coord = CoordinatorServer(settings.coordinator())
            exits.push_async_callback(coord.shutdown)
            port = await coord.start(LOOPBACK_ANY)
            settings = dataclasses.replace(settings, coordinator_addr=f"127.0.0.1:{port}")
        stack = Stack(settings, registry, coord, None)
        exits.push_async_callback(stack.stop_gateway)
        if gateway:
            await stack.start_gateway()
        exits.push_async_callback(stack.stop_agents)
        exits.push_async_callback(stack.close_client)
        yield stack
