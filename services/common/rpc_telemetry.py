"""Server interceptor: a SERVER span per RPC (parented on the caller's traceparent) and RPC
duration by method and status code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from hivewire.core.tracing import tracer
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


class TelemetryServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Outermost interceptor: it sees the status the error-mapping interceptor chose."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method: str = handler_call_details.method
        traced = not method.startswith(_UNTRACED)
        carrier = {
            k: v
            for k, v in (handler_call_details.invocation_metadata or ())
            if k in _PROPAGATED and isinstance(v, str)
        }
        observe = _Observer(method, carrier, traced)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                observe.unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                observe.stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


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

    def unary(self, inner: Any) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            start = time.perf_counter()
            code = "OK"
            if not self.traced:
                try:
                    return await inner(request, context)
                except BaseException:
                    code = _status_code(context, "CANCELLED")
                    raise
                finally:
                    self._finish(None, start, code)
            with self._span() as span:
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
            start = time.perf_counter()
            code = "OK"
            with self._span() if self.traced else _NullSpan() as span:
                try:
                    async for item in inner(request, context):
                        yield item
                except (asyncio.CancelledError, GeneratorExit):
                    code = "CANCELLED"
                    raise
                except BaseException:
                    code = _status_code(context, "INTERNAL")
                    raise
                finally:
                    self._finish(span, start, code)

        return stream


class _NullSpan:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
