"""Prometheus series every service process exports (the endpoint: hivewire.core.metrics_server).

Per-process series (sum them across replicas): RPC durations, latency histograms, dashboard
subscribers and overflows. Task counters, queue depths, agents and streams are read from Redis
when scraped (services/common/redis_metrics.py), so every replica reports the same values.
"""

from __future__ import annotations

import contextlib

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0,
)  # fmt: skip

RPC_DURATION = Histogram(
    "hivewire_rpc_duration_seconds",
    "Server-side duration of gRPC calls, by method (service/method) and status code.",
    ["method", "code"],
    buckets=_LATENCY_BUCKETS,
)
ASSIGNMENT_LATENCY = Histogram(
    "hivewire_task_assignment_latency_seconds",
    "Submit to first delivery to an agent, by capability.",
    ["capability"],
    buckets=_LATENCY_BUCKETS,
)
END_TO_END_LATENCY = Histogram(
    "hivewire_task_end_to_end_latency_seconds",
    "Submit to terminal state, by capability and final state.",
    ["capability", "state"],
    buckets=_LATENCY_BUCKETS,
)
DASHBOARD_SUBSCRIBERS = Gauge(
    "hivewire_dashboard_subscribers",
    "Open event streams (StreamEvents) on this gateway.",
)
AGENT_STREAMS = Gauge(
    "hivewire_agent_streams",
    "Agents connected to this gateway over AgentService (one stream each).",
)
DASHBOARD_OVERFLOWS = Counter(
    "hivewire_dashboard_overflows",
    "Event streams cut off because the subscriber fell behind its bounded queue.",
)


def register_collector(collector: Collector) -> None:
    REGISTRY.register(collector)


def unregister_collector(collector: Collector) -> None:
    with contextlib.suppress(KeyError):
        REGISTRY.unregister(collector)


AUTH_DENIED = Counter(
    "hivewire_auth_denied",
    "Calls refused by authentication (UNAUTHENTICATED) or authorization (PERMISSION_DENIED), "
    "by method and status code.",
    ["method", "code"],
)
