"""Prometheus series of an agent process (served when HIVEWIRE_AGENT_METRICS_PORT is set)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

AGENT_TASKS = Counter(
    "hivewire_agent_tasks",
    "Attempts this agent process ran, by capability and outcome.",
    ["capability", "outcome"],
)
AGENT_TASK_DURATION = Histogram(
    "hivewire_agent_task_duration_seconds",
    "Delivery-to-result time in this agent process, by capability.",
    ["capability"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0),
)
