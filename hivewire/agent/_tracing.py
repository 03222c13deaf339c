"""The agent's spans: a CONSUMER span per delivery and a child span around the handler.

The first delivery of a task (attempt 1) is parented on the coordinator's dispatch span; a
redelivery (attempt > 1) starts its own trace linked to that attempt's dispatch span, which
sits in the task's trace, so Jaeger shows each retry as a linked trace rather than one ever
growing span tree.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from hivewire.agent._metrics import AGENT_TASK_DURATION, AGENT_TASKS
from hivewire.core import tracing
from hivewire.core.convert import enum_name
from hivewire.v1 import stream_pb2


# The labelled series, looked up once per capability (and outcome), not once per attempt.
@functools.lru_cache(maxsize=1024)
def _duration(capability: str) -> Any:
    return AGENT_TASK_DURATION.labels(capability)


@functools.lru_cache(maxsize=1024)
def _outcomes(capability: str, outcome: stream_pb2.TaskOutcome.ValueType) -> Any:
    return AGENT_TASKS.labels(
        capability, enum_name(stream_pb2.TaskOutcome, outcome, "TASK_OUTCOME_")
    )


def _attributes(envelope: stream_pb2.TaskEnvelope, inbox: str) -> dict[str, str | int]:
    attrs: dict[str, str | int] = {
        tracing.TASK_ID: envelope.task_id,
        tracing.ATTEMPT: envelope.attempt,
        tracing.CAPABILITY: envelope.capability,
        tracing.AGENT_ID: envelope.agent_id,
        "messaging.system": "redis",
        "messaging.operation.type": "process",
        "messaging.destination.name": inbox,
    }
    if envelope.workflow_id:
        attrs[tracing.WORKFLOW_ID] = envelope.workflow_id
    return attrs


@contextmanager
def processing_span(envelope: stream_pb2.TaskEnvelope, inbox: str) -> Iterator[Span]:
    """CONSUMER span of one delivery, current while the attempt runs; sets the task id for logs.

    With tracing off this costs a context variable and two metric updates, no span at all.
    """
    token = tracing.current_task_id.set(envelope.task_id)
    start = time.perf_counter()
    try:
        if not tracing.recording():
            yield trace.INVALID_SPAN
            return
        parent = tracing.context_of(envelope.traceparent)
        links: list[Link] = []
        if parent is not None and envelope.attempt > 1:
            sc = trace.get_current_span(parent).get_span_context()
            links.append(Link(sc, {"hivewire.link": "dispatch of this attempt"}))
            parent = Context()  # a new trace: linked, not parented
        with tracing.tracer().start_as_current_span(
            f"process {envelope.capability}",
            context=parent,
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=_attributes(envelope, inbox),
        ) as span:
            yield span
    finally:
        tracing.current_task_id.reset(token)
        _duration(envelope.capability).observe(time.perf_counter() - start)


def record_outcome(result: stream_pb2.TaskResult, envelope: stream_pb2.TaskEnvelope) -> None:
    """Outcome on the current (processing) span, the counter, and the span's traceparent on the
    result (untraced, the envelope's traceparent passes through so the coordinator can still
    parent its span)."""
    span = trace.get_current_span()
    _outcomes(envelope.capability, result.outcome).inc()
    if not span.is_recording():
        result.traceparent = envelope.traceparent
        return
    name = enum_name(stream_pb2.TaskOutcome, result.outcome, "TASK_OUTCOME_")
    result.traceparent = tracing.traceparent_of(trace.set_span_in_context(span))
    span.set_attribute(tracing.OUTCOME, name)
    if result.outcome not in (stream_pb2.TASK_OUTCOME_SUCCEEDED, stream_pb2.TASK_OUTCOME_CANCELLED):
        span.set_status(Status(StatusCode.ERROR, result.error[:200]))
