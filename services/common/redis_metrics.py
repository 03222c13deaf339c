"""Scrape-time metrics read from Redis: task counters, queue depths, agents, streams.

Read when Prometheus scrapes (from the metrics HTTP thread, with a short socket timeout), so
every replica reports the same values and the task path pays nothing for them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from typing import Any, cast

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from hivewire.core.metrics_server import MetricsServer, start_metrics_server
from hivewire.v1 import agent_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import (
    register_collector,
    unregister_collector,
)
from hivewire_services.common.validation import check_capability

logger = logging.getLogger(__name__)

# Counter names kept by the coordinators' metrics feed (services/coordinator/tasks/metrics_feed.py).
TASK_COUNTERS = (
    "submitted", "succeeded", "failed", "retried", "reclaimed", "dead_lettered", "cancelled",
    "timed_out",
)  # fmt: skip
MAX_AGENTS_SCANNED = 10_000
MAX_CAPABILITIES = 1_000


class RedisStateCollector(Collector):
    """Sections: "tasks" (counters), "queues", "streams", "agents"."""

    def __init__(self, redis_url: str, keys: Keys, sections: Collection[str]) -> None:
        self.keys = keys
        self.sections = frozenset(sections)
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    def close(self) -> None:
        self._redis.close()

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("hivewire_redis_up", "1 if Redis answered this scrape.")
        try:
            families = list(self._collect())
        except (redis.RedisError, OSError) as exc:
            logger.warning("metrics: redis unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _collect(self) -> Iterator[Any]:
        counters: dict[tuple[str, str], int] = {}
        if self.sections & {"tasks", "queues"}:
            raw = cast(dict[bytes, bytes], self._redis.hgetall(self.keys.task_counters))
            counters = parse_counters(raw)
        if "tasks" in self.sections:
            yield from _task_counters(counters)
        if "queues" in self.sections:
            yield from self._queues({cap for _, cap in counters})
        if "streams" in self.sections:
            yield from self._streams()
        if "agents" in self.sections:
            yield from self._agents()

    def _queues(self, known: set[str]) -> Iterator[Any]:
        members = cast(set[bytes], self._redis.smembers(self.keys.pending_capabilities))
        caps = sorted(known | {m.decode() for m in members})[:MAX_CAPABILITIES]
        valid = []
        for cap in caps:
            try:
                check_capability(cap)
                valid.append(cap)
            except Exception:
                continue
        pipe = self._redis.pipeline(transaction=False)
        for cap in valid:
            pipe.zcard(self.keys.pending(cap))
        pipe.zcard(self.keys.due)
        sizes = pipe.execute()
        depth = GaugeMetricFamily(
            "hivewire_queue_depth", "Tasks waiting in a pending queue.", labels=["capability"]
        )
        for cap, size in zip(valid, sizes, strict=False):
            depth.add_metric([cap], int(size))
        yield depth
        due = GaugeMetricFamily(
            "hivewire_retry_waiting", "Tasks waiting for their retry backoff to pass."
        )
        due.add_metric([], int(sizes[-1]))
        yield due

    def _streams(self) -> Iterator[Any]:
        streams = {
            "results": self.keys.results,
            "events": self.keys.events,
            "dead_letters": self.keys.dead_letters,
            "workflow_updates": self.keys.workflow_updates,
        }
        pipe = self._redis.pipeline(transaction=False)
        for key in streams.values():
            pipe.xlen(key)
            pipe.xinfo_groups(key)
        pipe.get(self.keys.hook_events_lost)
        replies = pipe.execute(raise_on_error=False)
        length = GaugeMetricFamily(
            "hivewire_stream_length", "Entries in a stream.", labels=["stream"]
        )
        pending = GaugeMetricFamily(
            "hivewire_stream_pending",
            "Entries read by a consumer group and not yet acknowledged.",
            labels=["stream", "group"],
        )
        lag = GaugeMetricFamily(
            "hivewire_stream_lag",
            "Entries a consumer group has not read yet.",
            labels=["stream", "group"],
        )
        for i, name in enumerate(streams):
            size, groups = replies[2 * i], replies[2 * i + 1]
            length.add_metric([name], int(size) if isinstance(size, int) else 0)
            if isinstance(groups, Exception):
                continue  # the stream does not exist yet
            for group in groups:
                gname = _text(group.get("name"))
                pending.add_metric([name, gname], int(group.get("pending") or 0))
                lag.add_metric([name, gname], int(group.get("lag") or 0))
        lost = CounterMetricFamily(
            "hivewire_hook_events_lost",
            "Events trimmed from the events stream before the hooks runners read them "
            "(their hooks never ran; see docs/hooks.md).",
        )
        raw_lost = replies[-1]
        lost.add_metric([], int(raw_lost) if isinstance(raw_lost, bytes | int) else 0)
        yield from (length, pending, lag, lost)

    def _agents(self) -> Iterator[Any]:
        # Live agents, then the offline ones still stored (see registry/listing.py).
        index_pipe = self._redis.pipeline(transaction=False)
        for index in (self.keys.live_agents, self.keys.offline_agents):
            index_pipe.zrange(index, 0, MAX_AGENTS_SCANNED - 1)
        live, offline = cast(list[list[bytes]], index_pipe.execute())
        ids = (live + offline)[:MAX_AGENTS_SCANNED]
        pipe = self._redis.pipeline(transaction=False)
        for raw in ids:
            pipe.hget(self.keys.agent_prefix + raw.decode(), "state")
        states = pipe.execute() if ids else []
        names = [n for n, _ in agent_pb2.AgentState.items() if "UNSPECIFIED" not in n]
        by_state = dict.fromkeys(names, 0)
        for raw_state in states:
            if raw_state is None:
                continue
            name = agent_pb2.AgentState.Name(int(raw_state))  # type: ignore[arg-type]
            by_state[name] = by_state.get(name, 0) + 1
        agents = GaugeMetricFamily(
            "hivewire_agents", "Registered agents by state.", labels=["state"]
        )
        for name, n in sorted(by_state.items()):
            agents.add_metric([name.removeprefix("AGENT_STATE_")], n)
        yield agents


def counter_field(counter: str, capability: str) -> str:
    """The field of the task counters hash (kept by the coordinators' metrics feed)."""
    return f"{counter}|{capability}"


def parse_counters(raw: dict[bytes, bytes]) -> dict[tuple[str, str], int]:
    """The task counters hash as {(counter, capability): count}."""
    out: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        name, _, capability = key.decode().partition("|")
        out[(name, capability)] = int(value)
    return out


def _task_counters(counters: dict[tuple[str, str], int]) -> Iterator[Any]:
    for name in TASK_COUNTERS:
        family = CounterMetricFamily(
            f"hivewire_tasks_{name}",
            f"Tasks {name.replace('_', ' ')}, by capability (all coordinators, from Redis).",
            labels=["capability"],
        )
        for (counter, capability), value in sorted(counters.items()):
            if counter == name:
                family.add_metric([capability], value)
        yield family


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ServiceMetrics:
    """A service's /metrics endpoint plus its Redis sections; `close()` is idempotent."""

    def __init__(self, redis_url: str, keys: Keys, port: int, host: str, sections: Collection[str]):
        self.redis_url = redis_url
        self.keys = keys
        self.port = port
        self.host = host
        self.sections = tuple(sections)
        self._server: MetricsServer | None = None
        self._collector: RedisStateCollector | None = None

    @property
    def addr(self) -> str | None:
        """host:port of the /metrics endpoint while it is served."""
        return None if self._server is None else self._server.addr

    def start(self) -> bool:
        """Serve /metrics if a port is configured (ANY_PORT: a free one); True when served."""
        self._server = start_metrics_server(self.port, self.host)
        if self._server is None:
            return False
        if self.sections:
            self._collector = RedisStateCollector(self.redis_url, self.keys, self.sections)
            register_collector(self._collector)
        return True

    def close(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            unregister_collector(collector)
            collector.close()
        server, self._server = self._server, None
        if server is not None:
            server.close()
