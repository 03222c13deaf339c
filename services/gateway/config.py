"""The gateway's settings: the one place in the gateway that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hivewire_services.common.config import SubmissionSettings, load_settings


@dataclass(frozen=True)
class GatewaySettings(SubmissionSettings):
    """The common settings and submission limits plus what the gateway reads."""

    gateway_addr: str = "127.0.0.1:50051"
    # Where the gateway listens; empty means the host:port of gateway_addr.
    gateway_listen: str = ""
    gateway_metrics_port: int = 0
    coordinator_addr: str = "127.0.0.1:50053"
    registry_addr: str = "127.0.0.1:50052"
    stream_queue_size: int = 1024
    stream_max_subscribers: int = 1000
    snapshot_max_tasks: int = 10_000
    # Custom command files; empty means ./commands, else the source tree's commands/.
    commands_dir: str = ""

    @property
    def listen_address(self) -> str:
        return self.gateway_listen or self.gateway_addr


def load_gateway_settings(env: Mapping[str, str] | None = None) -> GatewaySettings:
    """GatewaySettings from HIVEWIRE_* variables (of the process, or `env`)."""
    return load_settings(GatewaySettings, env)
