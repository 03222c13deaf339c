"""Server interceptor: a SERVER span per RPC (parented on the caller's traceparent) and RPC
duration by method and status code."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from hivewire.core.tracing import recording, tracer
from hivewire_services.common.interceptors import RewrapInterceptor, Wrappers
from hivewire_services.common.metrics import RPC_DURATION

_PROPAGATED = frozenset({"traceparent", "tracestate", "baggage"})
# Health probes and reflection are measured but not traced: they would bury real traces.
_UNTRACED = ("/grpc.health.v1.", "/grpc.reflection.")


def _status_code(context: grpc.aio.ServicerContext[Any, Any], default: str) -> str:
    try:
        code = context.code()
    except Exception:
        return default
    if code is None:
        return default
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class TelemetryServerInterceptor(RewrapInterceptor):
    """Outermost interceptor: it sees the status the error-mapping interceptor chose."""

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        method: str = details.method
        observe = _Observer(method, not method.startswith(_UNTRACED))
        return observe.unary, observe.stream


def _carrier(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    return {
        k: v
        for k, v in (context.invocation_metadata() or ())
        if k in _PROPAGATED and isinstance(v, str)
    }


def _caller_context(carrier: dict[str, str]) -> Context | None:
    """With no span recorded, only the caller's span context matters: a context holding it
    (None when the call brings none), as the no-op span would have made current."""
    if "traceparent" not in carrier:
        return None
    span = trace.get_current_span(propagate.extract(carrier))
    return trace.set_span_in_context(span) if span.get_span_context().is_valid else None


class _Observer:
    def __init__(self, method: str, traced: bool) -> None:
        self.method = method
        self.name = method.lstrip("/")
        self.traced = traced
        self.histogram = RPC_DURATION
        # The histogram's child per status code, looked up once (labels() takes a lock).
        self._children: dict[str, Any] = {}

    def _span(self, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        carrier = _carrier(context)
        return tracer().start_as_current_span(
            self.name,
            context=propagate.extract(carrier) if carrier else None,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        )

    def _finish(self, span: Any, start: float, code: str) -> None:
        child = self._children.get(code)
        if child is None:
            child = self._children[code] = self.histogram.labels(self.name, code)
        child.observe(time.perf_counter() - start)
        if span is not None and span.is_recording():
            service, _, method = self.name.partition("/")
            span.set_attribute("rpc.system", "grpc")
            span.set_attribute("rpc.service", service)
            span.set_attribute("rpc.method", method)
            span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])
            if code != "OK":
                span.set_status(Status(StatusCode.ERROR, code))

    def _scope(self, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        """A recorded SERVER span when tracing records; otherwise only the caller's trace
        context made current (tasks keep its trace id), with no span made."""
        if not self.traced:
            return _NullSpan()
        if recording():
            return self._span(context)
        return _Attached(_caller_context(_carrier(context)))

    @contextlib.contextmanager
    def _observed(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        cancelled: tuple[type[BaseException], ...],
    ) -> Iterator[None]:
        """Times the call and spans it (when traced); `cancelled` are how the caller left."""
        start = time.perf_counter()
        code = "OK"
        with self._scope(context) as span:
            try:
                yield
            except cancelled:
                code = "CANCELLED"
                raise
            except BaseException:
                code = _status_code(context, "INTERNAL")
                raise
            finally:
                self._finish(span, start, code)

    def unary(self, inner: Any) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # Written out rather than through _observed: this runs on every unary call.
            start = time.perf_counter()
            code = "OK"
            with self._scope(context) as span:
                try:
                    return await inner(request, context)
                except asyncio.CancelledError:
                    code = "CANCELLED"
                    raise
                except BaseException:
                    code = _status_code(context, "INTERNAL")
                    raise
                finally:
                    self._finish(span, start, code)

        return unary

    def stream(self, inner: Any) -> Any:
        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            # A stream is also left by closing the generator (the client went away).
            with self._observed(context, (asyncio.CancelledError, GeneratorExit)):
                async for item in inner(request, context):
                    yield item

        return stream


class _Attached:
    """Makes a context current for the call (nothing when None); yields no span."""

    def __init__(self, ctx: Context | None) -> None:
        self.ctx = ctx
        self.token: object = None

    def __enter__(self) -> None:
        if self.ctx is not None:
            self.token = otel_context.attach(self.ctx)

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]


class _NullSpan:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
