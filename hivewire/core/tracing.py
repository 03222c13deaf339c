"""Trace context helpers shared by the SDK and the services: W3C traceparent, gRPC client spans.

Only the OpenTelemetry API is used here: without a configured TracerProvider every span is a
no-op, yet trace ids still travel, so a task keeps the trace id its client gave it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "hivewire"

# Span attributes (the issue names these; dashboards and Jaeger searches use them).
TASK_ID = "hivewire.task_id"
WORKFLOW_ID = "hivewire.workflow_id"
ATTEMPT = "hivewire.attempt"
AGENT_ID = "hivewire.agent_id"
CAPABILITY = "hivewire.capability"
OUTCOME = "hivewire.outcome"

_W3C = TraceContextTextMapPropagator()

# The task a process is working on, for JSON log lines written meanwhile.
current_task_id: ContextVar[str] = ContextVar("hivewire_task_id", default="")


# recording()'s answer, cached: asking the OpenTelemetry API reads os.environ on every call
# while no provider is set, a cost on each task of an untraced agent.
_recording: bool | None = None


def recording() -> bool:
    """True when an SDK TracerProvider is installed (spans are recorded and exported).

    Cached: whoever installs a provider calls refresh_recording() afterwards.
    """
    global _recording
    if _recording is None:
        provider = trace.get_tracer_provider()
        _recording = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
    return _recording


def provider_records() -> bool:
    """recording(), asked again while it says no (a program may install its provider after it
    made a client); a provider once installed stays (the API refuses to replace it)."""
    if not recording():
        refresh_recording()
    return recording()


def refresh_recording() -> None:
    """Forget recording()'s cached answer (after trace.set_tracer_provider)."""
    global _recording
    _recording = None


def tracer() -> trace.Tracer:
    """The hivewire tracer of the current TracerProvider (a no-op one when none is set)."""
    return trace.get_tracer(TRACER_NAME)


def traceparent_of(ctx: Context | None = None) -> str:
    """The W3C traceparent of the span in `ctx` (default: the current one); '' if none."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=ctx)
    return carrier.get("traceparent", "")


def context_of(traceparent: str) -> Context | None:
    """A Context whose (remote) parent span is `traceparent`; None if it is empty or malformed."""
    if not traceparent:
        return None
    ctx = _W3C.extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def new_traceparent() -> str:
    """A fresh, sampled root traceparent (for work that arrives without trace context)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def current_or_new_traceparent() -> str:
    """The current span's traceparent, or a fresh one: every task gets a trace id."""
    return traceparent_of() or new_traceparent()


def trace_id_of(traceparent: str) -> str:
    """The 32-hex trace id inside a traceparent ('' when it is not one)."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


def trace_metadata() -> list[tuple[str, str]]:
    """The current trace context as call metadata (traceparent, and baggage if any); [] when
    there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items()) if carrier.get("traceparent") else []


def _with_context(metadata: Sequence[tuple[str, str | bytes]] | None) -> list[Any]:
    """`metadata` plus the current trace context (traceparent, and baggage if any)."""
    return [*(metadata or ()), *trace_metadata()]


def _details(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        _with_context(details.metadata),
        details.credentials,
        details.wait_for_ready,
    )


def _method_name(method: str | bytes) -> str:
    text = method.decode() if isinstance(method, bytes) else method
    return text.lstrip("/")


async def _with_trace_context(
    _interceptor: object,
    continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
    client_call_details: grpc.aio.ClientCallDetails,
    request: Any,
) -> Any:
    """An interceptor method that only adds the trace context to the call's metadata."""
    return await continuation(_details(client_call_details), request)


class TracingUnaryUnaryInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """A CLIENT span per unary call, with traceparent injected into the call's metadata."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        name = _method_name(client_call_details.method)
        with tracer().start_as_current_span(
            name, kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False
        ) as span:
            call = await continuation(_details(client_call_details), request)
            if span.is_recording():
                service, _, method = name.partition("/")
                span.set_attribute("rpc.system", "grpc")
                span.set_attribute("rpc.service", service)
                span.set_attribute("rpc.method", method)
                try:
                    await call
                except grpc.aio.AioRpcError as exc:
                    span.set_attribute("rpc.grpc.status_code", exc.code().value[0])
                    span.set_status(Status(StatusCode.ERROR, exc.code().name))
                else:
                    span.set_attribute("rpc.grpc.status_code", 0)
            return call


class TracingUnaryStreamInterceptor(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Server streams get the caller's trace context in their metadata (no long-lived span)."""

    intercept_unary_stream = _with_trace_context


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Interceptors for every grpc.aio channel a Hivewire process opens."""
    return [TracingUnaryUnaryInterceptor(), TracingUnaryStreamInterceptor()]


def attach(ctx: Context) -> object:
    """Make `ctx` current; pass the token to `detach`."""
    return otel_context.attach(ctx)


def detach(token: object) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]
