"""The metrics feed: counts task events by capability in Redis and observes latency histograms.

It reads the events stream through its own consumer group, so with several coordinators each
event is counted by exactly one of them; the counters live in Redis (every replica's /metrics
reports the same totals) and survive restarts. A slow feed never slows the task path: it only
reads the events stream. With tracing on it also turns retries, reclaims and dead letters into
spans in each task's trace (tasks/lifecycle_spans.py).
"""

from __future__ import annotations

import logging

from hivewire.v1 import event_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import ASSIGNMENT_LATENCY, END_TO_END_LATENCY
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_metrics import counter_field
from hivewire_services.common.streams import Entry, GroupOptions, StreamConsumer
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.lifecycle_spans import record_lifecycle_spans

logger = logging.getLogger(__name__)

METRICS_GROUP = "metrics"
BATCH = 1000
CLAIM_IDLE_S = 30.0

# Event type -> counter name (hivewire_tasks_<name>_total).
COUNTED = {
    event_pb2.EVENT_TYPE_TASK_SUBMITTED: "submitted",
    event_pb2.EVENT_TYPE_TASK_SUCCEEDED: "succeeded",
    event_pb2.EVENT_TYPE_TASK_FAILED: "failed",
    event_pb2.EVENT_TYPE_TASK_RETRYING: "retried",
    event_pb2.EVENT_TYPE_TASK_RECLAIMED: "reclaimed",
    event_pb2.EVENT_TYPE_TASK_DEAD_LETTERED: "dead_lettered",
    event_pb2.EVENT_TYPE_TASK_CANCELLED: "cancelled",
    event_pb2.EVENT_TYPE_TASK_TIMED_OUT: "timed_out",
}
_TERMINAL = {
    event_pb2.EVENT_TYPE_TASK_SUCCEEDED: "SUCCEEDED",
    event_pb2.EVENT_TYPE_TASK_FAILED: "FAILED",
    event_pb2.EVENT_TYPE_TASK_CANCELLED: "CANCELLED",
    event_pb2.EVENT_TYPE_TASK_TIMED_OUT: "TIMED_OUT",
}


class MetricsFeed(StreamConsumer):
    """One consumer of the `metrics` group on the events stream."""

    name = "metrics feed"

    def __init__(self, redis: Redis, keys: Keys, consumer: str) -> None:
        # "$": counting starts when the first coordinator with metrics starts. metrics_feed.lua
        # acknowledges each entry as it counts it.
        options = GroupOptions(
            keys.events, METRICS_GROUP, consumer, batch=BATCH, claim_idle=CLAIM_IDLE_S, start_id="$"
        )
        super().__init__(redis, options)
        self.keys = keys
        self._count = scripts.CountEvents(redis, keys)

    async def handle(self, entries: list[Entry]) -> None:
        """Count a batch atomically (idempotent per entry), then observe latencies."""
        rows: list[scripts.CountRow] = []
        events: list[event_pb2.Event | None] = []
        for entry_id, fields in entries:
            try:
                event: event_pb2.Event | None = decode_entry(entry_id, fields)
            except Exception:
                event = None
            field = ""
            if event is not None and event.type in COUNTED:
                field = counter_field(COUNTED[event.type], event.capability)
            events.append(event)
            rows.append(scripts.CountRow(entry_id, field))
        if not events:
            return
        acked = await self._count(METRICS_GROUP, rows)
        fresh = [e for e, a in zip(events, acked, strict=True) if e is not None and a == 1]
        await self._observe(fresh)
        await record_lifecycle_spans(self.redis, self.keys, fresh)

    async def _observe(self, events: list[event_pb2.Event]) -> None:
        timed = [
            e
            for e in events
            if e.type in _TERMINAL
            or (e.type == event_pb2.EVENT_TYPE_TASK_ASSIGNED and e.attempt == 1)
        ]
        if not timed:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for e in timed:
                pipe.hget(self.keys.task(e.task_id), "create_ms")
            created = await pipe.execute()
        for event, raw in zip(timed, created, strict=True):
            if not raw:
                continue
            seconds = max(0.0, (event.time.ToMilliseconds() - int(raw)) / 1000)
            if event.type == event_pb2.EVENT_TYPE_TASK_ASSIGNED:
                ASSIGNMENT_LATENCY.labels(event.capability).observe(seconds)
            else:
                END_TO_END_LATENCY.labels(event.capability, _TERMINAL[event.type]).observe(seconds)
