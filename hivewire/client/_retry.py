"""Honouring a server's RetryInfo: idempotent calls refused with RESOURCE_EXHAUSTED (load
shedding, rate limits) are tried again after the delay the server asks for, capped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

T = TypeVar("T")

STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Tries after the first, and the longest wait between two, whatever the server asks.
MAX_RETRIES = 3
MAX_RETRY_DELAY = 5.0


def retry_delay(exc: grpc.aio.AioRpcError) -> float | None:
    """Seconds the RetryInfo of a RESOURCE_EXHAUSTED status asks to wait; None otherwise (a
    limit the caller cannot wait out, such as a payload too large, carries no RetryInfo)."""
    if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
        return None
    for key, value in exc.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


async def with_retry_info(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int = MAX_RETRIES,
    cap: float = MAX_RETRY_DELAY,
) -> T:
    """Await `call()`; after a RESOURCE_EXHAUSTED with RetryInfo, wait min(delay, cap) and try
    again, at most `retries` more times. Use only for calls that are safe to repeat."""
    for attempt in range(retries + 1):
        try:
            return await call()
        except grpc.aio.AioRpcError as exc:
            delay = retry_delay(exc)
            if delay is None or attempt == retries:
                raise
            await asyncio.sleep(min(max(delay, 0.0), cap))
    raise AssertionError("unreachable")  # pragma: no cover
