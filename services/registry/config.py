"""The registry's settings: the one place in the registry that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hivewire_services.common.config import CommonSettings, load_settings


@dataclass(frozen=True)
class RegistrySettings(CommonSettings):
    """The common settings plus what the registry reads; field `x_y` <- `HIVEWIRE_X_Y`."""

    registry_addr: str = "127.0.0.1:50052"
    # Where the registry listens; empty means the host:port of registry_addr.
    registry_listen: str = ""
    registry_metrics_port: int = 0
    lease_seconds: float = 15.0
    lease_sweep_interval: float = 1.0
    task_lease_seconds: float = 30.0
    stream_queue_size: int = 1024

    @property
    def listen_address(self) -> str:
        return self.registry_listen or self.registry_addr


def load_registry_settings(env: Mapping[str, str] | None = None) -> RegistrySettings:
    """RegistrySettings from HIVEWIRE_* variables (of the process, or `env`)."""
    return load_settings(RegistrySettings, env)
