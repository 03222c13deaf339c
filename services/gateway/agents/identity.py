"""An agent stream's identity: its hello checked, then registered anew or resumed."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from hivewire.core.agent_states import IDENTITY_LOST_CODES
from hivewire.core.clock import duration_from_seconds
from hivewire.v1 import agent_pb2, agent_service_pb2, registry_pb2, registry_pb2_grpc
from hivewire_services.common.agent_checks import check_running_ids, validate_registration
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import INBOX_GROUP, Keys
from hivewire_services.common.validation import check_id

MAX_SDK = 64
DEFAULT_LEASE = 15.0
# The registry no longer knows this identity (lease ran out, deregistered, wrong token).
LOST_CODES = IDENTITY_LOST_CODES


@dataclass(frozen=True)
class Identity:
    """Who is on the stream and where its work is."""

    agent: agent_pb2.Agent
    token: str
    lease: float
    inbox: str
    results: str
    resumed: bool
    inbox_group: str = INBOX_GROUP

    @property
    def agent_id(self) -> str:
        return self.agent.agent_id


def welcome_of(identity: Identity, kept: list[str]) -> agent_service_pb2.AgentWelcome:
    """The answer to hello: heartbeats are due every third of the lease."""
    return agent_service_pb2.AgentWelcome(
        agent=identity.agent,
        agent_token=identity.token,
        lease_duration=duration_from_seconds(identity.lease),
        heartbeat_interval=duration_from_seconds(identity.lease / 3),
        resumed=identity.resumed,
        resumed_task_ids=kept,
    )


def check_hello(hello: agent_service_pb2.AgentHello) -> list[str]:
    """INVALID_ARGUMENT naming the field of a bad hello; the running task ids of a resume."""
    validate_registration(hello, "hello.")
    if len(hello.sdk) > MAX_SDK:
        raise InvalidArgument(f"hello.sdk is longer than {MAX_SDK}", field="hello.sdk")
    if hello.resume_agent_id or hello.resume_agent_token:
        check_id(hello.resume_agent_id, "hello.resume_agent_id")
        if not hello.resume_agent_token:
            raise InvalidArgument(
                "hello.resume_agent_token is required to resume", field="hello.resume_agent_token"
            )
    elif hello.running_task_ids:
        raise InvalidArgument(
            "hello.running_task_ids is only for a resume", field="hello.running_task_ids"
        )
    return check_running_ids(hello.running_task_ids, "hello.running_task_ids")


class Registrar:
    """The registry calls of agent streams, each with the gateway's deadline."""

    def __init__(
        self, registry: registry_pb2_grpc.RegistryServiceAsyncStub, keys: Keys, timeout: float
    ) -> None:
        self._registry = registry
        self._keys = keys
        self._timeout = timeout

    async def register(self, hello: agent_service_pb2.AgentHello) -> Identity:
        """A new identity for the agent the hello describes."""
        reply = await self._registry.RegisterAgent(
            registry_pb2.RegisterAgentRequest(
                name=hello.name,
                capabilities=hello.capabilities,
                max_concurrency=hello.max_concurrency,
                labels=hello.labels,
            ),
            timeout=self._timeout,
        )
        return Identity(
            reply.agent,
            reply.agent_token,
            reply.lease_duration.ToTimedelta().total_seconds(),
            reply.inbox_stream,
            reply.results_stream,
            resumed=False,
            inbox_group=reply.inbox_group,
        )

    async def resume(self, agent_id: str, token: str) -> Identity | None:
        """The identity if a heartbeat with its token renews its lease; None if it is gone."""
        try:
            await self.heartbeat(agent_id, token, in_flight=0, draining=False, running=[])
        except grpc.aio.AioRpcError as exc:
            if exc.code() in LOST_CODES:
                return None
            raise
        reply = await self._registry.GetAgent(
            registry_pb2.GetAgentRequest(agent_id=agent_id), timeout=self._timeout
        )
        agent = reply.agent
        renewed = (
            agent.lease_expire_time.ToMilliseconds() - agent.last_heartbeat_time.ToMilliseconds()
        )
        lease = renewed / 1000 if renewed > 0 else DEFAULT_LEASE
        return Identity(
            agent, token, lease, self._keys.inbox(agent_id), self._keys.results, resumed=True
        )

    async def heartbeat(
        self, agent_id: str, token: str, *, in_flight: int, draining: bool, running: list[str]
    ) -> tuple[list[str], bool]:
        """Renew the agent's lease and its running attempts'; the tasks to cancel, and whether
        an operator drained the agent."""
        reply = await self._registry.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=agent_id,
                agent_token=token,
                in_flight=in_flight,
                draining=draining,
                running_task_ids=running,
            ),
            timeout=self._timeout,
        )
        return list(reply.cancel_task_ids), reply.drain

    async def deregister(self, identity: Identity) -> None:
        await self._registry.DeregisterAgent(
            registry_pb2.DeregisterAgentRequest(
                agent_id=identity.agent_id, agent_token=identity.token
            ),
            timeout=self._timeout,
        )
