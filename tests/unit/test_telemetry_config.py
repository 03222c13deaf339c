"""When tracing exports: only when the standard OTEL_* variables ask for it."""

from __future__ import annotations

import pytest

from hivewire.core import tracing
from hivewire.core.telemetry import tracing_enabled


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_enabled(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled


def test_traceparent_round_trip() -> None:
    tp = tracing.new_traceparent()
    version, trace_id, span_id, flags = tp.split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "01", 32, 16)
    assert tracing.trace_id_of(tp) == trace_id
    ctx = tracing.context_of(tp)
    assert ctx is not None
    assert tracing.traceparent_of(ctx) == tp


@pytest.mark.parametrize("bad", ["", "nonsense", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"])
def test_malformed_traceparent_gives_no_context(bad: str) -> None:
    assert tracing.context_of(bad) is None
    assert tracing.trace_id_of("nonsense") == ""


def test_untraced_process_still_gives_every_task_a_trace_id() -> None:
    from hivewire_services.coordinator.tasks.dispatch_tracing import submit_traceparents

    given = tracing.new_traceparent()
    kept, fresh_a, fresh_b = submit_traceparents([given, "", ""])
    assert kept == given
    assert tracing.trace_id_of(fresh_a) and tracing.trace_id_of(fresh_b)
    assert tracing.trace_id_of(fresh_a) != tracing.trace_id_of(fresh_b)
