"""Configuration: the one place that reads HIVEWIRE_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Settings:
    """Every setting with its safe default; field `x_y` is read from `HIVEWIRE_X_Y`."""

    redis_url: str = "redis://127.0.0.1:6390/0"
    namespace: str = "hw"
    gateway_addr: str = "127.0.0.1:50051"
    registry_addr: str = "127.0.0.1:50052"
    coordinator_addr: str = "127.0.0.1:50053"
    # Where each service listens; empty means the host:port of its *_addr.
    gateway_listen: str = ""
    registry_listen: str = ""
    coordinator_listen: str = ""
    # Once serving, the process writes the address it bound (host:port) to this file, so a
    # parent can start it on port 0 and still find it.
    addr_file: str = ""
    log_level: str = "INFO"
    rpc_timeout: float = 5.0
    shutdown_grace: float = 5.0
    max_message_bytes: int = 8 * 1024 * 1024
    max_payload_bytes: int = 1024 * 1024
    max_batch: int = 1000
    lease_seconds: float = 15.0
    lease_sweep_interval: float = 1.0
    default_max_attempts: int = 3
    retry_initial_backoff: float = 1.0
    retry_max_backoff: float = 60.0
    scheduler_interval: float = 0.2
    scheduler_batch: int = 512
    results_batch: int = 512
    events_maxlen: int = 200_000
    task_retention_seconds: float = 7 * 24 * 3600.0
    stream_queue_size: int = 1024
    stream_max_subscribers: int = 1000
    snapshot_max_tasks: int = 10_000
    agent_running_report_after: float = 0.1
    # Workflows and custom commands
    workflow_max_steps: int = 500
    workflow_max_map: int = 1000
    workflow_claim_idle: float = 30.0
    workflow_sweep_interval: float = 10.0
    commands_dir: str = ""
    task_lease_seconds: float = 30.0
    reclaim_interval: float = 1.0
    dead_letters_maxlen: int = 100_000
    results_claim_idle: float = 30.0
    # Hooks runner (services/hooks): no file means the runner idles.
    hooks_file: str = ""
    hooks_addr: str = "127.0.0.1:50054"
    hooks_listen: str = ""
    hooks_concurrency: int = 8
    hooks_max_attempts: int = 5
    hooks_retry_initial_backoff: float = 1.0
    hooks_retry_max_backoff: float = 60.0
    hooks_claim_idle: float = 30.0
    hooks_poll_interval: float = 0.2
    hooks_max_backlog: int = 10_000
    # Prometheus /metrics port of each service (0 disables) and the address it binds.
    gateway_metrics_port: int = 0
    registry_metrics_port: int = 0
    coordinator_metrics_port: int = 0
    # Read by the agent SDK's run_agent (agents do not load Settings); listed for completeness.
    agent_metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    # Redis reachability probe of every service (health NOT_SERVING and fail-fast RPCs).
    redis_probe_interval: float = 1.0
    redis_probe_timeout: float = 1.0
    # AOF fsync policy of the Redis `hivewire up` embeds: everysec or always.
    redis_appendfsync: str = "everysec"

    def listen(self, service: str) -> str:
        """Listen address of a service: HIVEWIRE_<SERVICE>_LISTEN, else its *_ADDR."""
        explicit = str(getattr(self, f"{service}_listen"))
        return explicit or str(getattr(self, f"{service}_addr"))


ENV_PREFIX = "HIVEWIRE_"


def env_name(field_name: str) -> str:
    """The environment variable that sets a Settings field."""
    return ENV_PREFIX + field_name.upper()


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read Settings from the environment (or `env`), then apply keyword overrides."""
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = source.get(env_name(f.name))
        if raw is None or raw == "":
            continue
        kind = type(getattr(Settings, f.name))
        try:
            values[f.name] = kind(raw)
        except ValueError as exc:
            raise ValueError(f"{env_name(f.name)}={raw!r} is not a valid {kind.__name__}") from exc
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
