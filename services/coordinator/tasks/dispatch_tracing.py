"""Coordinator spans around the task queue: PRODUCER spans for dispatch, spans for results.

The task hash's `trace_id` field holds the W3C traceparent of the span that submitted the task
(or of a workflow span); every attempt's dispatch is its child, and the dispatch span's own
traceparent goes into the envelope. With tracing off the stored traceparent is passed through
unchanged and no span is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from hivewire.core import tracing
from hivewire.v1 import stream_pb2


def submit_traceparents(given: Sequence[str]) -> list[str]:
    """The traceparent each submitted task keeps: its own (a workflow's), else the current
    span's (the submitting RPC), else a fresh one, so every task has a trace id."""
    current = tracing.traceparent_of()
    return [tp or current or tracing.new_traceparent() for tp in given]


def start_dispatch(
    envelope: stream_pb2.TaskEnvelope, stored_traceparent: str
) -> tuple[Span | None, str]:
    """The PRODUCER span of one delivery (None when tracing is off) and the envelope traceparent."""
    if not tracing.recording():
        return None, stored_traceparent
    attrs: dict[str, str | int] = {
        tracing.TASK_ID: envelope.task_id,
        tracing.ATTEMPT: envelope.attempt,
        tracing.AGENT_ID: envelope.agent_id,
        tracing.CAPABILITY: envelope.capability,
        "messaging.system": "redis",
        "messaging.operation.type": "send",
    }
    if envelope.workflow_id:
        attrs[tracing.WORKFLOW_ID] = envelope.workflow_id
    span = tracing.tracer().start_span(
        f"dispatch {envelope.capability}",
        context=tracing.context_of(stored_traceparent),
        kind=SpanKind.PRODUCER,
        attributes=attrs,
    )
    if envelope.attempt > 1:
        span.add_event("hivewire.redelivery", {tracing.ATTEMPT: envelope.attempt})
    return span, tracing.traceparent_of(trace.set_span_in_context(span))


def end_dispatch(spans: Iterable[Span | None], codes: Iterable[object]) -> None:
    """End dispatch spans; one whose assignment was not applied is marked as such."""
    for span, code in zip(spans, codes, strict=False):
        if span is None:
            continue
        if int(code) != 1:  # type: ignore[call-overload]
            span.set_attribute("hivewire.dispatched", False)
        span.end()


def start_result_spans(results: Sequence[stream_pb2.TaskResult]) -> list[Span]:
    """One span per applied result, parented on the agent's processing span."""
    if not tracing.recording():
        return []
    spans = []
    for result in results:
        outcome = stream_pb2.TaskOutcome.Name(result.outcome).removeprefix("TASK_OUTCOME_")
        spans.append(
            tracing.tracer().start_span(
                "apply result",
                context=tracing.context_of(result.traceparent),
                kind=SpanKind.CONSUMER,
                attributes={
                    tracing.TASK_ID: result.task_id,
                    tracing.ATTEMPT: result.attempt,
                    tracing.AGENT_ID: result.agent_id,
                    tracing.OUTCOME: outcome,
                },
            )
        )
    return spans


def end_result_spans(spans: list[Span]) -> None:
    for span in spans:
        span.end()
