"""Which agent states are live, and which registry answers mean an identity is gone: the one
definition for the SDK and the services."""

from __future__ import annotations

import grpc

from hivewire.v1 import agent_pb2

LIVE_AGENT_STATES = frozenset({agent_pb2.AGENT_STATE_ONLINE, agent_pb2.AGENT_STATE_DRAINING})


def is_live_agent(state: int) -> bool:
    """ONLINE or DRAINING: holds a lease (OFFLINE agents are listed after these, if at all)."""
    return state in LIVE_AGENT_STATES


# The registry no longer knows an identity (lease ran out, deregistered, wrong token): an agent
# registers anew, a gateway ends the agent's stream.
IDENTITY_LOST_CODES = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
