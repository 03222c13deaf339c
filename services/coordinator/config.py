"""The coordinator's settings: the one place in the coordinator that reads the environment."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire_services.common.config import AgentLeases, TaskPathSettings


@dataclass(frozen=True)
class CoordinatorSettings(AgentLeases, TaskPathSettings):
    """The common settings and submission limits plus what the coordinator reads."""

    service = "coordinator"

    # Where the coordinator listens; empty means the host:port of coordinator_addr.
    coordinator_listen: str = ""
    coordinator_metrics_port: int = 0
    retry_initial_backoff: float = 1.0
    retry_max_backoff: float = 60.0
    # Longest sleeps of the timed loops: they wake when work arrives or comes due.
    scheduler_interval: float = 30.0
    scheduler_batch: int = 512
    # Assign a submitted task in the submit call itself when an agent has room and nothing
    # waits ahead of it (tasks/eager.py); off, every task waits for a scheduling pass.
    eager_dispatch: bool = True
    results_batch: int = 512
    # Results a coordinator read and died before applying are taken over after this idle time.
    # Well under task_lease_seconds: the attempt's lease, no longer renewed once its agent is
    # done, must not run out first, or the reaper re-runs a task whose result is waiting.
    # Applying a result twice changes nothing (complete.lua fences by attempt and token).
    results_claim_idle: float = 5.0
    reclaim_interval: float = 15.0
    dead_letters_maxlen: int = 100_000
    task_retention_seconds: float = 7 * 24 * 3600.0
    # Output a task may store (bytes of its chunks); past it one marker, the rest dropped.
    task_output_max_bytes: int = 1024 * 1024
    workflow_max_map: int = 1000
    # All inputs of one map step together (each is also at most max_payload_bytes).
    workflow_max_map_bytes: int = 16 * 1024 * 1024
    # A task result (a step's output) and error as applied; see docs/api.md "Limits".
    max_result_bytes: int = 1024 * 1024
    max_error_bytes: int = 16 * 1024
    workflow_claim_idle: float = 30.0
    workflow_sweep_interval: float = 30.0
    # Longest sleep of the schedule loop: it wakes at the earliest due fire, and for schedules
    # created on this coordinator; this bounds how late it hears of one created elsewhere.
    schedule_interval: float = 5.0
    # How often a BUFFER_ONE schedule with a buffered tick looks whether its run has ended.
    schedule_recheck: float = 1.0


load_coordinator_settings = CoordinatorSettings.load
