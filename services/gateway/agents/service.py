"""The AgentService servicer: one Connection per Connect stream, a bound on how many."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import agent_service_pb2_grpc
from hivewire_services.common.errors import ResourceExhausted, Unavailable
from hivewire_services.gateway.agents.connection import AgentDeps, Connection
from hivewire_services.gateway.agents.identity import Identity
from hivewire_services.gateway.errors import Aborted

logger = logging.getLogger(__name__)


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    """Serves agent streams; `stop()` ends them all (the agents resume elsewhere)."""

    def __init__(self, deps: AgentDeps, max_connections: int) -> None:
        self._deps = deps
        self._max = max_connections
        self._open: set[Connection] = set()
        self._by_agent: dict[str, Connection] = {}
        self._agent_of: dict[Connection, str] = {}
        self._stopping = False

    @property
    def connected(self) -> int:
        """Agents with a live stream on this gateway."""
        return len(self._by_agent)

    async def Connect(
        self, request_iterator: AsyncIterator[pb.ConnectRequest], context: Any
    ) -> AsyncIterator[pb.ConnectResponse]:
        if self._stopping:
            raise Unavailable("the gateway is shutting down", reason="GATEWAY_STOPPING")
        if len(self._open) >= self._max:
            raise ResourceExhausted(
                f"this gateway already serves {self._max} agent streams",
                reason="TOO_MANY_AGENTS",
            )
        conn = Connection(self._deps, request_iterator)
        self._open.add(conn)
        try:
            async for msg in conn.responses(self._adopt):
                yield msg
        finally:
            self._open.discard(conn)
            self._forget(conn)
            await conn.release()

    def _forget(self, conn: Connection) -> None:
        agent_id = self._agent_of.pop(conn, None)
        if agent_id is not None and self._by_agent.get(agent_id) is conn:
            del self._by_agent[agent_id]

    async def _adopt(self, conn: Connection, identity: Identity) -> None:
        """An agent has one stream per gateway: a newer one takes over from the older."""
        self._forget(conn)
        agent_id = identity.agent_id
        older = self._by_agent.get(agent_id)
        self._by_agent[agent_id] = conn
        self._agent_of[conn] = agent_id
        if older is not None:
            logger.info("agent %s reconnected; ending its older stream", agent_id)
            await older.shutdown(
                Aborted("a newer stream of this agent took over", reason="AGENT_RECONNECTED")
            )

    async def stop(self) -> None:
        """End every agent stream with UNAVAILABLE once its stored reports are acknowledged."""
        self._stopping = True
        error = Unavailable("the gateway is shutting down; reconnect", reason="GATEWAY_STOPPING")
        await asyncio.gather(*(conn.shutdown(error) for conn in list(self._open)))
