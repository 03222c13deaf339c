"""Per-principal limits: a token bucket of calls per second and a cap of open streams.

The key is the authenticated principal's name, or the caller's IP address when the call runs
as LOCAL (authentication off). State lives in this process's memory: each gateway replica
limits on its own, and the buckets are kept in a bounded LRU map, so a flood of distinct
callers costs at most `max_keys` buckets (a caller evicted comes back with a full bucket).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from hivewire_services.common import principal
from hivewire_services.common.errors import ResourceExhausted
from hivewire_services.common.inflight import UNLIMITED_PREFIXES
from hivewire_services.common.interceptors import RewrapInterceptor, Wrappers, abort_for

# What a caller over its stream cap is told to wait (a stream ends when its caller lets go).
STREAM_RETRY_DELAY = 5.0


def caller_key(peer: str) -> str:
    """Whom limits count a call against: `principal:<name>` when authenticated, else
    `peer:<address without port>` from the context's peer string."""
    who = principal.current()
    if who is not principal.LOCAL:
        return f"principal:{who.name}"
    if peer.startswith(("ipv4:", "ipv6:")):
        peer = peer.rsplit(":", 1)[0]
    return f"peer:{peer}"


class TokenBucket:
    """`rate` tokens a second up to `burst`; a call takes one."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> float:
        """Take a token: 0 when one was there, else the seconds until one will be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class PrincipalLimits:
    """The buckets and stream counts of every caller of one server process."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_streams: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst or max(1.0, 2 * rate))
        self.max_streams = max_streams
        self.max_keys = max_keys
        self.clock = clock
        self.buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        # Open streams per caller; a caller leaves the map when its last stream ends, so the
        # map is bounded by the server's stream bound.
        self.streams: dict[str, int] = {}

    def admit(self, key: str) -> None:
        """Count one call of `key`; ResourceExhausted (with RetryInfo) past its rate."""
        if self.rate <= 0:
            return
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
            while len(self.buckets) > self.max_keys:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        wait = bucket.take(now)
        if wait > 0:
            raise ResourceExhausted(
                f"rate limit of {self.rate:g} calls/s exceeded; retry in {wait:.3f}s",
                reason="RATE_LIMITED",
                metadata={"rate": f"{self.rate:g}", "burst": f"{self.burst:g}"},
                retry_delay=wait,
            )

    def open_stream(self, key: str) -> None:
        """Count one more open stream of `key`; ResourceExhausted past the cap."""
        count = self.streams.get(key, 0)
        if self.max_streams > 0 and count >= self.max_streams:
            raise ResourceExhausted(
                f"{self.max_streams} streams already open by this caller; close one first",
                reason="STREAM_LIMIT",
                metadata={"limit": str(self.max_streams)},
                retry_delay=STREAM_RETRY_DELAY,
            )
        self.streams[key] = count + 1

    def close_stream(self, key: str) -> None:
        count = self.streams.get(key, 0) - 1
        if count > 0:
            self.streams[key] = count
        else:
            self.streams.pop(key, None)


class PrincipalLimitInterceptor(RewrapInterceptor):
    """Applies `PrincipalLimits` to every RPC but health and reflection. It must run inside
    the interceptor that binds the principal (after it in the server's list)."""

    def __init__(self, limits: PrincipalLimits) -> None:
        self.limits = limits

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        if details.method.startswith(UNLIMITED_PREFIXES):
            return (lambda inner: inner), (lambda inner: inner)
        limits = self.limits
        if limits.rate <= 0:  # no rate: unary calls have nothing to count
            return (lambda inner: inner), (lambda inner: _limit_stream(inner, limits))
        return (lambda inner: _limit_unary(inner, limits)), (
            lambda inner: _limit_stream(inner, limits)
        )


def _limit_unary(inner: Any, limits: PrincipalLimits) -> Any:
    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            limits.admit(caller_key(context.peer()))
        except ResourceExhausted as exc:
            await abort_for(context, exc)
        return await inner(request, context)

    return unary


def _limit_stream(inner: Any, limits: PrincipalLimits) -> Any:
    async def stream(
        request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        key = caller_key(context.peer())
        try:
            limits.admit(key)
            limits.open_stream(key)
        except ResourceExhausted as exc:
            await abort_for(context, exc)
        try:
            async for item in inner(request, context):
                yield item
        finally:
            limits.close_stream(key)

    return stream
