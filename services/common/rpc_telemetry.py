"""Server interceptor: a SERVER span per RPC (parented on the caller's traceparent) and RPC
duration by method and status code."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from hivewire.core.tracing import tracer
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
        traced = not method.startswith(_UNTRACED)
        carrier = {
            k: v
            for k, v in (details.invocation_metadata or ())
            if k in _PROPAGATED and isinstance(v, str)
        }
        observe = _Observer(method, carrier, traced)
        return observe.unary, observe.stream


class _Observer:
    def __init__(self, method: str, carrier: dict[str, str], traced: bool) -> None:
        self.method = method
        self.name = method.lstrip("/")
        self.carrier = carrier
        self.traced = traced
        self.histogram = RPC_DURATION

    def _span(self) -> Any:
        parent = propagate.extract(self.carrier) if self.carrier else None
        return tracer().start_as_current_span(
            self.name,
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        )

    def _finish(self, span: Any, start: float, code: str) -> None:
        self.histogram.labels(self.name, code).observe(time.perf_counter() - start)
        if span is not None and span.is_recording():
            service, _, method = self.name.partition("/")
            span.set_attribute("rpc.system", "grpc")
            span.set_attribute("rpc.service", service)
            span.set_attribute("rpc.method", method)
            span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[code].value[0])
            if code != "OK":
                span.set_status(Status(StatusCode.ERROR, code))

    @contextlib.contextmanager
    def _observed(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        cancelled: tuple[type[BaseException], ...],
    ) -> Iterator[None]:
        """Times the call and spans it (when traced); `cancelled` are how the caller left."""
        start = time.perf_counter()
        code = "OK"
        with self._span() if self.traced else _NullSpan() as span:
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
            with self._observed(context, (asyncio.CancelledError,)):
                return await inner(request, context)

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


class _NullSpan:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
