"""Load shedding: bound the unary calls and the long-lived streams a server runs at once.

Health and reflection are never counted nor refused: they are how a load balancer and an
operator learn that a busy server is still alive. Streams (StreamEvents, WatchStats,
StreamTaskOutput, AgentService.Connect, WatchAgents) have a bound of their own, so a pile of
open streams cannot take the slots unary calls need. A call past a bound is refused at once
with RESOURCE_EXHAUSTED and a RetryInfo, before its handler runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from hivewire_services.common.errors import ResourceExhausted
from hivewire_services.common.interceptors import RewrapInterceptor, Wrappers, abort_for

# Never shed: health checks and reflection.
UNLIMITED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
# What a refused caller is told to wait before trying again (slots free up as calls end).
RETRY_DELAY = 1.0


class Gauge:
    """A count of calls in flight with an upper bound."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind = kind
        self.limit = limit
        self.value = 0

    def acquire(self) -> None:
        """Take a slot, or raise ResourceExhausted when all are taken."""
        if self.value >= self.limit:
            raise ResourceExhausted(
                f"server busy: {self.limit} {self.kind} in flight; retry later",
                reason="CONCURRENCY_LIMIT",
                metadata={"limit": str(self.limit), "kind": self.kind},
                retry_delay=RETRY_DELAY,
            )
        self.value += 1

    def release(self) -> None:
        self.value -= 1


class InFlightLimitInterceptor(RewrapInterceptor):
    """Counts unary calls and streams (separately) and refuses those past their bound."""

    def __init__(self, max_unary: int, max_streams: int) -> None:
        self.unary = Gauge("unary calls", max_unary)
        self.streams = Gauge("streams", max_streams)

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        if details.method.startswith(UNLIMITED_PREFIXES):
            return (lambda inner: inner), (lambda inner: inner)
        return (lambda inner: _limit_unary(inner, self.unary)), (
            lambda inner: _limit_stream(inner, self.streams)
        )


def _limit_unary(inner: Any, gauge: Gauge) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            gauge.acquire()
        except ResourceExhausted as exc:
            await abort_for(context, exc)
        try:
            return await inner(request, context)
        finally:
            gauge.release()

    return unary


def _limit_stream(inner: Any, gauge: Gauge) -> Any:
    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            gauge.acquire()
        except ResourceExhausted as exc:
            await abort_for(context, exc)
        try:
            async for item in inner(request, context):
                yield item
        finally:
            gauge.release()

    return stream
