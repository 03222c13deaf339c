"""Test helpers for RegistryService over a real channel: register, list, take agents offline."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hivewire.v1 import agent_pb2, registry_pb2, registry_pb2_grpc
from hivewire_services.common.server import create_channel
from tests.settings import StackSettings

if TYPE_CHECKING:
    Stub = registry_pb2_grpc.RegistryServiceAsyncStub


@contextlib.asynccontextmanager
async def registry_stub(settings: StackSettings) -> AsyncIterator[Stub]:
    """A RegistryService stub on the registry at `settings.registry_addr`."""
    channel = create_channel(settings.registry_addr, settings)
    try:
        yield registry_pb2_grpc.RegistryServiceStub(channel)  # type: ignore[misc]
    finally:
        await channel.close()


async def register(
    stub: Stub,
    name: str = "worker",
    capabilities: tuple[str, ...] = ("echo",),
    max_concurrency: int = 4,
    labels: dict[str, str] | None = None,
) -> registry_pb2.RegisterAgentResponse:
    return await stub.RegisterAgent(
        registry_pb2.RegisterAgentRequest(
            name=name,
            capabilities=list(capabilities),
            max_concurrency=max_concurrency,
            labels=labels or {},
        ),
        timeout=5,
    )


async def deregister(stub: Stub, reply: registry_pb2.RegisterAgentResponse) -> str:
    """Take a registered agent offline; returns its id."""
    agent_id = reply.agent.agent_id
    await stub.DeregisterAgent(
        registry_pb2.DeregisterAgentRequest(agent_id=agent_id, agent_token=reply.agent_token),
        timeout=5,
    )
    return agent_id


async def list_agents(stub: Stub, **fields: object) -> agent_pb2.ListAgentsResponse:
    request = agent_pb2.ListAgentsRequest(**fields)  # type: ignore[arg-type]
    reply = await stub.ListAgents(
        registry_pb2.RegistryServiceListAgentsRequest(request=request), timeout=5
    )
    return reply.response


async def every_page(stub: Stub, **fields: object) -> tuple[list[str], int]:
    """The agent ids of every page in order, and how many pages there were."""
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await list_agents(stub, page_token=token, **fields)
        pages += 1
        seen.extend(a.agent_id for a in page.agents)
        token = page.next_page_token
        if not token:
            return seen, pages
