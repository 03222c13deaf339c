"""Which agent states are live: the one definition for the SDK and the services."""

from __future__ import annotations

from hivewire.v1 import agent_pb2

LIVE_AGENT_STATES = frozenset({agent_pb2.AGENT_STATE_ONLINE, agent_pb2.AGENT_STATE_DRAINING})


def is_live_agent(state: int) -> bool:
    """ONLINE or DRAINING: holds a lease (OFFLINE agents are listed after these, if at all)."""
    return state in LIVE_AGENT_STATES
