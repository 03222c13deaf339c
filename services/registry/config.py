"""The registry's settings: the one place in the registry that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire_services.common.config import (
    AgentLeases,
    RegistryAddress,
    ServiceSettings,
    StreamQueues,
)


@dataclass(frozen=True)
class RegistrySettings(AgentLeases, StreamQueues, RegistryAddress, ServiceSettings):
    """The common settings plus what the registry reads; field `x_y` <- `HIVEWIRE_X_Y`."""

    service = "registry"

    # Where the registry listens; empty means the host:port of registry_addr.
    registry_listen: str = ""
    registry_metrics_port: int = 0
    # Longest sleep of the lease sweeper (it wakes when the earliest lease runs out).
    lease_sweep_interval: float = 30.0
    # An agent gone OFFLINE stays listable (ListAgents include_offline, GetAgent) this long;
    # then Redis deletes its record. Tasks keep its agent_id.
    offline_agent_retention_seconds: float = 300.0
    # 1: make a Redis user per agent at registration, limited to its own inbox and XADD on the
    # results stream (docs/security.md, Redis); the registry's own user then needs
    # acl|setuser, acl|deluser and acl|users.
    agent_redis_users: int = 0


load_registry_settings = RegistrySettings.load
