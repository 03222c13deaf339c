"""The coordinator's settings: the one place in the coordinator that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hivewire_services.common.config import SubmissionSettings, load_settings


@dataclass(frozen=True)
class CoordinatorSettings(SubmissionSettings):
    """The common settings and submission limits plus what the coordinator reads."""

    coordinator_addr: str = "127.0.0.1:50053"
    # Where the coordinator listens; empty means the host:port of coordinator_addr.
    coordinator_listen: str = ""
    coordinator_metrics_port: int = 0
    registry_addr: str = "127.0.0.1:50052"
    # Agent lease: an agent silent this long is offline (half of it is the Redis outage grace).
    lease_seconds: float = 15.0
    task_lease_seconds: float = 30.0
    retry_initial_backoff: float = 1.0
    retry_max_backoff: float = 60.0
    scheduler_interval: float = 0.2
    scheduler_batch: int = 512
    results_batch: int = 512
    results_claim_idle: float = 30.0
    reclaim_interval: float = 1.0
    dead_letters_maxlen: int = 100_000
    task_retention_seconds: float = 7 * 24 * 3600.0
    workflow_max_map: int = 1000
    workflow_claim_idle: float = 30.0
    workflow_sweep_interval: float = 10.0

    @property
    def listen_address(self) -> str:
        return self.coordinator_listen or self.coordinator_addr


def load_coordinator_settings(env: Mapping[str, str] | None = None) -> CoordinatorSettings:
    """CoordinatorSettings from HIVEWIRE_* variables (of the process, or `env`)."""
    return load_settings(CoordinatorSettings, env)
