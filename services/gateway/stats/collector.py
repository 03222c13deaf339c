"""System snapshots for WatchStats: state counts read from Redis plus the gateway's counters.

One collector per gateway; what is read from Redis is cached for CACHE_SECONDS so any number
of watchers costs Redis one read per cache period. Rates are computed per frame from the
counters over the exact slots the caller asks for, so consecutive frames of one watcher cover
every slot once (a cached read never shifts a watcher's window).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

from hivewire.core.agent_states import is_live_agent
from hivewire.core.clock import duration_from_seconds, now_ms, ts_from_ms
from hivewire.core.convert import enum_name
from hivewire.v1 import agent_pb2, event_pb2, stats_pb2, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.rate_limits import RateLimits, usage_message
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.stats.counters import EventCounters, Percentiles, counted_fields
from hivewire_services.gateway.stats.state_reader import StateReader
from hivewire_services.gateway.stats.tenant_stats import TenantCounters, tenant_base

CACHE_SECONDS = 0.1
TENANT_CACHE_SECONDS = 1.0  # a tenant's counts scan its unfinished tasks: read less often
MAX_TENANT_CACHE = 256
SCAN_EVERY = 10.0  # how often queues of capabilities no event named are looked for
SCAN_LIMIT = 10_000
MAX_AGENTS = 10_000
_TASK_STATES = [v for v in task_pb2.TaskState.values() if v != task_pb2.TASK_STATE_UNSPECIFIED]

WorkflowCounter = Callable[[], Awaitable[int]]


def _latency(p: Percentiles) -> stats_pb2.LatencyStats:
    return stats_pb2.LatencyStats(
        count=p.count,
        p50=duration_from_seconds(p.p50),
        p90=duration_from_seconds(p.p90),
        p99=duration_from_seconds(p.p99),
    )


class StatsCollector:
    """Builds Stats messages; `observe` must be registered as an events hub listener."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        subscribers: Callable[[], int],
        workflows_running: WorkflowCounter | None = None,
    ) -> None:
        self.reader = StateReader(redis, keys)
        self.redis = redis
        self.keys = keys
        self.counters = EventCounters()
        self.tenants = TenantCounters()
        self._tenant_cache: dict[str, tuple[float, stats_pb2.Stats]] = {}
        self._subscribers = subscribers
        self._workflows_running = workflows_running
        self._rate_limits = RateLimits(redis, keys)
        self._cached: tuple[float, stats_pb2.Stats] | None = None
        self._lock = asyncio.Lock()
        self._scanned: set[str] = set()
        self._scanned_at = float("-inf")

    def observe(self, event: event_pb2.Event) -> None:
        """Count an event (for everyone, and for its tenant), its fields read once for both."""
        fields = counted_fields(event)
        now = self.counters.clock()
        self.counters.count(now, *fields)
        if fields[1] or event.workflow_id:  # a task id, or else about no tenant's work
            self.tenants.of(event.tenant).count(now, *fields)

    async def snapshot(
        self, window: float, end: int | None = None, tenant: str | None = None
    ) -> stats_pb2.Stats:
        """The current Stats, of one `tenant` (None: every tenant); rates are over the
        `window` seconds of counter slots before slot `end` (default: the last `window`
        seconds)."""
        async with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= CACHE_SECONDS:
                self._cached = (time.monotonic(), await self._build())
            base = self._cached[1]
            counters = self.counters
            if tenant is not None:
                counters = self.tenants.get(tenant)
                base = await self._tenant_base(tenant, base, counters)
        stats = stats_pb2.Stats()
        stats.CopyFrom(base)
        throughput = counters.throughput(window, end)
        for cap in stats.capabilities:
            cap.throughput_per_second = throughput.get(cap.capability, 0.0)
        stats.events_per_second = counters.events_per_second(window, end)
        return stats

    async def _tenant_base(
        self, tenant: str, everyone: stats_pb2.Stats, counters: EventCounters
    ) -> stats_pb2.Stats:
        cached = self._tenant_cache.get(tenant)
        if cached is not None and time.monotonic() - cached[0] < TENANT_CACHE_SECONDS:
            return cached[1]
        base = await tenant_base(self.redis, self.keys, tenant, everyone, counters)
        base.assignment_latency.CopyFrom(_latency(counters.assignment_latency()))
        base.end_to_end_latency.CopyFrom(_latency(counters.end_to_end_latency()))
        if len(self._tenant_cache) >= MAX_TENANT_CACHE:
            self._tenant_cache.clear()
        self._tenant_cache[tenant] = (time.monotonic(), base)
        return base

    async def _queued_capabilities(self) -> set[str]:
        """Capabilities with a pending queue, found by SCAN at most every SCAN_EVERY seconds."""
        if time.monotonic() - self._scanned_at < SCAN_EVERY:
            return self._scanned
        self._scanned_at = time.monotonic()
        prefix = self.keys.pending_prefix
        found: set[str] = set()
        async for key in self.redis.scan_iter(match=prefix + "*", count=1000):
            found.add((key.decode() if isinstance(key, bytes) else str(key))[len(prefix) :])
            if len(found) >= SCAN_LIMIT:
                break
        self._scanned = found
        return found

    async def _build(self) -> stats_pb2.Stats:
        """Everything but the rates (the caller adds those for its own window)."""
        agents_by_state: Counter[str] = Counter()
        agents_by_cap: Counter[str] = Counter()
        async for agent in self.reader.agents(MAX_AGENTS):
            agents_by_state[enum_name(agent_pb2.AgentState, agent.state, "AGENT_STATE_")] += 1
            if is_live_agent(agent.state):
                agents_by_cap.update(agent.capabilities)
        pipe = self.redis.pipeline(transaction=False)
        for state in _TASK_STATES:
            pipe.zcard(self.keys.tasks_by_state(str(state)))
        pipe.smembers(self.keys.pending_capabilities)
        replies = await pipe.execute()
        pending_caps = {c.decode() for c in cast(set[bytes], replies.pop())}
        tasks_by_state = {
            enum_name(task_pb2.TaskState, s, "TASK_STATE_"): int(n)
            for s, n in zip(_TASK_STATES, replies, strict=True)
        }
        queued = await self._queued_capabilities()
        seen = self.counters.capabilities
        capabilities = sorted(set(agents_by_cap) | pending_caps | queued | seen)
        capabilities = [c for c in capabilities if c]
        depth_pipe = self.redis.pipeline(transaction=False)
        for cap in capabilities:
            depth_pipe.zcard(self.keys.pending(cap))
        depths = cast(list[int], await depth_pipe.execute())
        stats = stats_pb2.Stats(
            agents_by_state=dict(agents_by_state),
            tasks_by_state=tasks_by_state,
            capabilities=[
                stats_pb2.CapabilityStats(
                    capability=cap,
                    queue_depth=int(depth),
                    agents=agents_by_cap.get(cap, 0),
                )
                for cap, depth in zip(capabilities, depths, strict=True)
            ],
            assignment_latency=_latency(self.counters.assignment_latency()),
            end_to_end_latency=_latency(self.counters.end_to_end_latency()),
            retries=self.counters.retries,
            reclaims=self.counters.reclaims,
            dead_letters=self.counters.dead_letters,
            subscribers=self._subscribers(),
        )
        if self._workflows_running is not None:
            stats.workflows_running = await self._workflows_running()
        stats.rate_limits.extend(usage_message(u) for u in await self._rate_limits.list())
        stats.time.CopyFrom(ts_from_ms(now_ms()))
        return stats
