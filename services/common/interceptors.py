"""Server interceptor that maps every exception to a clear gRPC status (never UNKNOWN)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status
from opentelemetry import trace

from services.common.errors import HivewireError, Unavailable, to_status
from services.common.redis import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)

_PASSTHROUGH_KEYS = {rpc_status.GRPC_DETAILS_METADATA_KEY}


async def abort_for(context: grpc.aio.ServicerContext[Any, Any], exc: BaseException) -> None:
    """Abort the RPC with the status that `exc` stands for."""
    if isinstance(exc, REDIS_UNAVAILABLE) and not isinstance(exc, HivewireError):
        exc = Unavailable(f"redis is unavailable: {type(exc).__name__}", reason="REDIS_UNAVAILABLE")
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


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps unary-unary and unary-stream handlers so any exception gets a mapped status."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _wrap_unary(inner: Any) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await inner(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_for(context, exc)
            raise  # unreachable: abort raises

    return unary


def _wrap_stream(inner: Any) -> Any:
    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            async for item in inner(request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:
            await abort_for(context, exc)
            raise

    return stream
