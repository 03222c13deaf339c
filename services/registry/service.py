"""The grpc.aio RegistryService servicer: validates requests, calls the store, maps to protos."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from hivewire.core.clock import duration_from_seconds, ts_from_ms
from hivewire.v1 import agent_pb2, operator_pb2, registry_pb2, registry_pb2_grpc
from hivewire_services.common.agent_checks import (
    check_running_ids,
    may_act_for,
    validate_registration,
)
from hivewire_services.common.errors import InvalidArgument, PermissionDenied, Unauthenticated
from hivewire_services.common.keys import INBOX_GROUP, Keys
from hivewire_services.common.principal import current
from hivewire_services.common.validation import check_capability, check_id, check_page_size
from hivewire_services.registry.agent_users import AgentUsers
from hivewire_services.registry.config import RegistrySettings
from hivewire_services.registry.listing import AgentLister
from hivewire_services.registry.model import AgentQuery, decode_page_token, encode_page_token
from hivewire_services.registry.store import AgentStore
from hivewire_services.registry.task_leases import TaskLeases
from hivewire_services.registry.watch import ChangeHub, watch_agents

Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpc ships no type hints)


def check_agent(agent_id: str, token: str) -> None:
    check_id(agent_id, "agent_id")
    if not token:
        raise Unauthenticated("agent_token is required", reason="BAD_AGENT_TOKEN")


@dataclass(eq=False)
class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """hivewire.v1.RegistryService over an AgentStore and a ChangeHub."""

    store: AgentStore
    hub: ChangeHub
    keys: Keys
    settings: RegistrySettings
    agent_users: AgentUsers | None = None  # when it makes a Redis user per agent

    def __post_init__(self) -> None:
        self._task_leases = TaskLeases(self.store.redis, self.keys, self.settings)
        self._lister = AgentLister(self.store)

    async def RegisterAgent(
        self, request: registry_pb2.RegisterAgentRequest, context: Context
    ) -> registry_pb2.RegisterAgentResponse:
        capabilities = validate_registration(request)
        registration = await self.store.register(
            request.name,
            capabilities,
            request.max_concurrency,
            dict(request.labels),
            owner=current().name,
        )
        agent_id = registration.agent.agent_id
        users = self.agent_users
        username = await users.admit(self.store, registration) if users is not None else ""
        return registry_pb2.RegisterAgentResponse(
            agent=registration.agent,
            agent_token=registration.token,
            lease_duration=duration_from_seconds(self.settings.lease_seconds),
            inbox_stream=self.keys.inbox(agent_id),
            inbox_group=INBOX_GROUP,
            results_stream=self.keys.results,
            redis_username=username,
        )

    async def SendHeartbeat(
        self, request: registry_pb2.SendHeartbeatRequest, context: Context
    ) -> registry_pb2.SendHeartbeatResponse:
        check_agent(request.agent_id, request.agent_token)
        if request.in_flight < 0:
            raise InvalidArgument("in_flight must not be negative", field="in_flight")
        running = check_running_ids(request.running_task_ids)
        await self._check_owner(request.agent_id)
        expire_ms, drain = await self.store.heartbeat(
            request.agent_id, request.agent_token, draining=request.draining
        )
        cancel = await self._task_leases.renew(request.agent_id, running)
        return registry_pb2.SendHeartbeatResponse(
            lease_expire_time=ts_from_ms(expire_ms), cancel_task_ids=cancel, drain=drain
        )

    async def DrainAgent(
        self, request: operator_pb2.RegistryServiceDrainAgentRequest, context: Context
    ) -> operator_pb2.RegistryServiceDrainAgentResponse:
        """An operator's drain: the agent gets no new work and is told to drain."""
        check_id(request.request.agent_id, "agent_id")
        agent = await self.store.drain(request.request.agent_id)
        return operator_pb2.RegistryServiceDrainAgentResponse(
            response=operator_pb2.DrainAgentResponse(agent=agent)
        )

    async def DeregisterAgent(
        self, request: registry_pb2.DeregisterAgentRequest, context: Context
    ) -> registry_pb2.DeregisterAgentResponse:
        check_agent(request.agent_id, request.agent_token)
        await self._check_owner(request.agent_id)
        await self.store.deregister(request.agent_id, request.agent_token)
        if self.agent_users is not None:
            await self.agent_users.remove([request.agent_id])
        return registry_pb2.DeregisterAgentResponse()

    async def _check_owner(self, agent_id: str) -> None:
        """PERMISSION_DENIED for a principal acting for an agent another one registered."""
        owner = await self.store.owner(agent_id)
        if not may_act_for(owner):
            raise PermissionDenied(
                f"agent {agent_id} belongs to {owner!r}, not to {current().name!r}",
                reason="AGENT_OF_ANOTHER_PRINCIPAL",
                field="agent_id",
            )

    async def GetAgent(
        self, request: registry_pb2.GetAgentRequest, context: Context
    ) -> registry_pb2.GetAgentResponse:
        check_id(request.agent_id, "agent_id")
        return registry_pb2.GetAgentResponse(agent=await self.store.get(request.agent_id))

    async def ListAgents(
        self, request: registry_pb2.RegistryServiceListAgentsRequest, context: Context
    ) -> registry_pb2.RegistryServiceListAgentsResponse:
        inner = request.request
        page_size = check_page_size(inner.page_size)
        start = decode_page_token(inner.page_token)
        if inner.capability:
            check_capability(inner.capability, "capability")
        if inner.state not in agent_pb2.AgentState.values():
            raise InvalidArgument("state is not a valid AgentState", field="state")
        query = AgentQuery(inner.capability, inner.state, inner.include_offline)
        page = await self._lister.page(page_size, start, query)
        token = "" if page.next is None else encode_page_token(page.next)
        return registry_pb2.RegistryServiceListAgentsResponse(
            response=agent_pb2.ListAgentsResponse(agents=page.agents, next_page_token=token)
        )

    async def WatchAgents(
        self, request: registry_pb2.WatchAgentsRequest, context: Context
    ) -> AsyncIterator[registry_pb2.WatchAgentsResponse]:
        # aclosing: the subscription is released as soon as this stream ends, not at GC.
        async with contextlib.aclosing(watch_agents(self.hub, self.store)) as stream:
            async for message in stream:
                yield message
