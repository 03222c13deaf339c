"""Spans for what happens to a task between attempts: retries, reclaims, dead letters, timeouts.

These transitions happen inside Lua scripts, so the spans are made afterwards from the events
stream (by the metrics feed, one batch at a time) as short children of the task's stored
traceparent: Jaeger shows them in the task's trace next to the dispatch spans.
"""

from __future__ import annotations

from hivewire.core import tracing
from hivewire.v1 import event_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis

SPAN_NAMES = {
    event_pb2.EVENT_TYPE_TASK_RETRYING: "task retrying",
    event_pb2.EVENT_TYPE_TASK_RECLAIMED: "task reclaimed",
    event_pb2.EVENT_TYPE_TASK_DEAD_LETTERED: "task dead-lettered",
    event_pb2.EVENT_TYPE_TASK_TIMED_OUT: "task timed out",
    event_pb2.EVENT_TYPE_TASK_CANCELLED: "task cancelled",
    event_pb2.EVENT_TYPE_TASK_FAILED: "task failed",
}


async def record_lifecycle_spans(redis: Redis, keys: Keys, events: list[event_pb2.Event]) -> int:
    """One span per lifecycle event, in its task's trace; returns how many were made."""
    if not tracing.recording():
        return 0
    wanted = [e for e in events if e.type in SPAN_NAMES and e.task_id]
    if not wanted:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for event in wanted:
            pipe.hget(keys.task(event.task_id), "trace_id")
        parents = await pipe.execute()
    start_ns = {id(e): e.time.ToNanoseconds() for e in wanted}
    for event, raw in zip(wanted, parents, strict=True):
        attrs: dict[str, str | int] = {
            tracing.TASK_ID: event.task_id,
            tracing.ATTEMPT: event.attempt,
            tracing.CAPABILITY: event.capability,
        }
        if event.agent_id:
            attrs[tracing.AGENT_ID] = event.agent_id
        if event.workflow_id:
            attrs[tracing.WORKFLOW_ID] = event.workflow_id
        if event.message:
            attrs["hivewire.message"] = event.message[:500]
        span = tracing.tracer().start_span(
            SPAN_NAMES[event.type],
            context=tracing.context_of((raw or b"").decode()),
            attributes=attrs,
            start_time=start_ns[id(event)] or None,
        )
        span.end(end_time=start_ns[id(event)] or None)
    return len(wanted)
