"""Server interceptor that maps every exception to a clear gRPC status (never UNKNOWN)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_status import rpc_status
from opentelemetry import trace

from hivewire_services.common.errors import HivewireError, to_status
from hivewire_services.common.redis_errors import is_outage, redis_error
from hivewire_services.common.redis_health import RedisGate, redis_unavailable

logger = logging.getLogger(__name__)

_PASSTHROUGH_KEYS = {rpc_status.GRPC_DETAILS_METADATA_KEY}
# Health and reflection answer whatever Redis does: they are how callers learn about it.
_UNGATED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


async def abort_for(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    """Abort the RPC with the status that `exc` stands for."""
    if not isinstance(exc, HivewireError):
        exc = redis_error(exc) or exc
    if isinstance(exc, HivewireError):
        status = rpc_status.to_status(to_status(exc))
        await context.abort(status.code, status.details, status.trailing_metadata)
    if isinstance(exc, grpc.aio.AioRpcError):
        # An error from a downstream service passes through with its code and rich details.
        code = exc.code()
        if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED):
            code = grpc.StatusCode.UNAVAILABLE
        trailing = tuple(
            (k, v) for k, v in (exc.trailing_metadata() or ()) if k in _PASSTHROUGH_KEYS
        )
        await context.abort(code, exc.details() or code.name, trailing)
    logger.error("unexpected error in RPC", exc_info=exc)
    trace.get_current_span().record_exception(exc)  # the detail goes to the log and the span
    await context.abort(grpc.StatusCode.INTERNAL, "internal error")


Wrappers = tuple[Callable[[Any], Any], Callable[[Any], Any]]


class RewrapInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server interceptor that wraps each handler's behaviour with the pair `wrappers` picks.

    The unary-unary behaviour goes through the first, the unary-stream and stream-stream ones
    (a server stream, whatever the request side) through the second; client-streaming-only
    handlers and None (no such method) pass as they are. `wrappers` may read only the method
    of its details (per-call data comes from the context at call time): `ChainInterceptor`
    builds each method's wrapped handler once and reuses it for every call.
    """

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return rewrap(handler, self.wrappers(handler_call_details))


def rewrap(handler: grpc.RpcMethodHandler, wrappers: Wrappers) -> grpc.RpcMethodHandler:
    """`handler` with its behaviour wrapped by the pair `wrappers` (see RewrapInterceptor)."""
    unary, stream = wrappers
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            stream(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            stream(handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


class ChainInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """RewrapInterceptors (outermost first) applied as one, each method's handler built once.

    Every layer's wrappers depend on the method alone, so the wrapped handler of a method is
    the same for every call: a call pays one interceptor hop and a dict lookup instead of one
    hop, one handler and a closure per layer. Unknown methods are not remembered (a caller
    could name any number of them).
    """

    def __init__(self, layers: Sequence[RewrapInterceptor]) -> None:
        self.layers = tuple(layers)
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is not None:
            return handler
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        for layer in reversed(self.layers):
            handler = rewrap(handler, layer.wrappers(handler_call_details))
        self._handlers[method] = handler
        return handler


class ErrorMappingInterceptor(RewrapInterceptor):
    """Wraps unary and server-streaming handlers so any exception gets a mapped status.

    With a RedisGate, RPCs are refused with UNAVAILABLE while Redis is unreachable, and a unary
    RPC running when Redis is lost ends with UNAVAILABLE rather than waiting on socket timeouts.
    """

    def __init__(self, gate: RedisGate | None = None) -> None:
        self.gate = gate

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        gate = None if details.method.startswith(_UNGATED_PREFIXES) else self.gate
        return (lambda inner: _wrap_unary(inner, gate)), (lambda inner: _wrap_stream(inner, gate))


async def _failed(
    context: grpc.aio.ServicerContext[Any, Any], exc: Exception, gate: RedisGate | None
) -> None:
    if gate is not None and is_outage(exc):
        gate.suspect()
    await abort_for(context, exc)


def _wrap_unary(inner: Any, gate: RedisGate | None) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            if gate is None:
                return await inner(request, context)
            if not gate.available:
                raise redis_unavailable()
            scope = asyncio.timeout(None)
            gate.watch(scope)
            try:
                async with scope:
                    return await inner(request, context)
            except TimeoutError:
                if scope.expired():
                    raise redis_unavailable() from None
                raise
            finally:
                gate.unwatch(scope)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _failed(context, exc, gate)
            raise  # unreachable: abort raises

    return unary


def _wrap_stream(inner: Any, gate: RedisGate | None) -> Any:
    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            # Long-lived streams are only refused at the start: they resume on their own.
            if gate is not None and not gate.available:
                raise redis_unavailable()
            async for item in inner(request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await _failed(context, exc, gate)
            raise

    return stream
