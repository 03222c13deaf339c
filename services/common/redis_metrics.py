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
        # Names the last scrape found: read in the next scrape's one pipeline.
        self._caps: list[str] = []
        self._agent_ids: list[str] = []

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
        """Every section's reads in one pipeline: names seen by the last scrape (capabilities,
        agents) are read with the rest; only names new since then cost a second one."""
        sections = self.sections
        # Snapshots: two scrapes may run at once (the metrics server has a thread each).
        caps, agent_ids = list(self._caps), list(self._agent_ids)
        pipe = self._redis.pipeline(transaction=False)
        if sections & {"tasks", "queues"}:
            pipe.hgetall(self.keys.task_counters)
        if "queues" in sections:
            pipe.smembers(self.keys.pending_capabilities)
            pipe.zcard(self.keys.due)
            for cap in caps:
                pipe.zcard(self.keys.pending(cap))
        streams = self._stream_keys()
        if "streams" in sections:
            for key in streams.values():
                pipe.xlen(key)
                pipe.xinfo_groups(key)  # an error (no stream yet) comes back as a value
            pipe.get(self.keys.hook_events_lost)
        if "agents" in sections:
            for index in (self.keys.live_agents, self.keys.offline_agents):
                pipe.zrange(index, 0, MAX_AGENTS_SCANNED - 1)
            for agent_id in agent_ids:
                pipe.hget(self.keys.agent_prefix + agent_id, "state")
        replies = iter(pipe.execute(raise_on_error=False))
        counters: dict[tuple[str, str], int] = {}
        if sections & {"tasks", "queues"}:
            counters = parse_counters(cast(dict[bytes, bytes], _ok(next(replies))))
        if "tasks" in sections:
            yield from _task_counters(counters)
        if "queues" in sections:
            yield from self._queues(replies, caps, {cap for _, cap in counters})
        if "streams" in sections:
            yield from _streams(replies, list(streams))
        if "agents" in sections:
            yield from self._agents(replies, agent_ids)

    def _stream_keys(self) -> dict[str, str]:
        return {
            "results": self.keys.results,
            "events": self.keys.events,
            "dead_letters": self.keys.dead_letters,
            "workflow_updates": self.keys.workflow_updates,
        }

    def _queues(self, replies: Iterator[Any], read: list[str], known: set[str]) -> Iterator[Any]:
        members = cast(set[bytes], _ok(next(replies)))
        waiting = int(_ok(next(replies)))
        depths = {cap: int(_ok(next(replies))) for cap in read}
        names = sorted(known | {m.decode() for m in members})[:MAX_CAPABILITIES]
        caps = self._caps = [cap for cap in names if _valid_capability(cap)]
        new = [cap for cap in caps if cap not in depths]
        if new:
            pipe = self._redis.pipeline(transaction=False)
            for cap in new:
                pipe.zcard(self.keys.pending(cap))
            depths.update(zip(new, (int(n) for n in pipe.execute()), strict=True))
        depth = GaugeMetricFamily(
            "hivewire_queue_depth", "Tasks waiting in a pending queue.", labels=["capability"]
        )
        for cap in caps:
            depth.add_metric([cap], depths[cap])
        yield depth
        due = GaugeMetricFamily(
            "hivewire_retry_waiting", "Tasks waiting for their retry backoff to pass."
        )
        due.add_metric([], waiting)
        yield due

    def _agents(self, replies: Iterator[Any], read: list[str]) -> Iterator[Any]:
        # Live agents, then the offline ones still stored (see registry/listing.py).
        live, offline = (cast(list[bytes], _ok(next(replies))) for _ in range(2))
        ids = [raw.decode() for raw in (live + offline)[:MAX_AGENTS_SCANNED]]
        self._agent_ids = ids
        states: dict[str, bytes | None] = {i: _ok(next(replies)) for i in read}
        new = [i for i in ids if i not in states]
        if new:
            pipe = self._redis.pipeline(transaction=False)
            for agent_id in new:
                pipe.hget(self.keys.agent_prefix + agent_id, "state")
            states.update(zip(new, pipe.execute(), strict=True))
        names = [n for n, _ in agent_pb2.AgentState.items() if "UNSPECIFIED" not in n]
        by_state = dict.fromkeys(names, 0)
        for agent_id in ids:
            raw_state = states[agent_id]
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


def _ok(reply: Any) -> Any:
    """A pipeline reply, raising the error it may be."""
    if isinstance(reply, Exception):
        raise reply
    return reply


def _valid_capability(cap: str) -> bool:
    try:
        check_capability(cap)
    except Exception:
        return False
    return True


def _streams(replies: Iterator[Any], names: list[str]) -> Iterator[Any]:
    length = GaugeMetricFamily("hivewire_stream_length", "Entries in a stream.", labels=["stream"])
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
    for name in names:
        size, groups = next(replies), next(replies)
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
    raw_lost = next(replies)
    lost.add_metric([], int(raw_lost) if isinstance(raw_lost, bytes | int) else 0)
    yield from (length, pending, lag, lost)


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
