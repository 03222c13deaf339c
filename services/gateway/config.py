"""The gateway's settings: the one place in the gateway that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire_services.common.auth.static_tokens import load_static_tokens
from hivewire_services.common.config import StreamQueues, TaskPathSettings


@dataclass(frozen=True)
class GatewaySettings(StreamQueues, TaskPathSettings):
    """The common settings and submission limits plus what the gateway reads."""

    service = "gateway"

    gateway_addr: str = "127.0.0.1:50051"
    # Where the gateway listens; empty means the host:port of gateway_addr.
    gateway_listen: str = ""
    gateway_metrics_port: int = 0
    stream_max_subscribers: int = 1000
    snapshot_max_tasks: int = 10_000
    # StreamTaskOutput callers with follow=true served at once (each holds a Redis connection).
    output_max_followers: int = 256
    # Custom command files; empty means ./commands, else the source tree's commands/.
    commands_dir: str = ""
    # AgentService: most agent streams one gateway serves (each holds a Redis connection).
    agent_max_connections: int = 1000
    # Calls a second each client (principal, or IP address) may make on this gateway, and the
    # burst it may spend at once (0: twice the rate); 0 turns the limit off
    # (docs/security.md#per-caller-limits).
    gateway_rate_limit_rps: float = 1000.0
    gateway_rate_limit_burst: int = 0

    # The static token file (docs/security.md, Tokens and roles): named tokens, by hash only,
    # imported into the token store at start (upsert by name).
    auth_tokens_file: str = ""

    def check_files(self) -> None:
        super().check_files()
        if self.auth_tokens_file:
            load_static_tokens(self.auth_tokens_file)

    def rate_limit(self) -> tuple[float, int]:
        return self.gateway_rate_limit_rps, self.gateway_rate_limit_burst


load_gateway_settings = GatewaySettings.load
