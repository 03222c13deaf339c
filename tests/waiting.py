"""The one way tests wait: poll a condition until it holds, never sleep and hope."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0


async def eventually(
    condition: Callable[[], Awaitable[T] | T],
    *,
    within: float = DEFAULT_TIMEOUT,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Poll `condition` (sync or async) until it returns something truthy; return that value.

    A condition that raises AssertionError counts as not met yet, so a condition may be a
    block of asserts. After `within` seconds, AssertionError with `message`, the last value
    and the last assertion. The deadline is on the loop clock, so a busy machine stretches
    the interval, never the number of checks below one.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        failure: AssertionError | None = None
        value: object = None
        try:
            result = condition()
            value = await result if inspect.isawaitable(result) else result
        except AssertionError as exc:
            failure = exc
        if failure is None and value:
            return value  # type: ignore[return-value]
        if loop.time() > deadline:
            detail = f"last error: {failure}" if failure else f"last value: {value!r}"
            raise AssertionError(f"{message or 'condition'} not met within {within}s ({detail})")
        await asyncio.sleep(interval)  # the poll interval: the one sleep that waits


async def health(addr: str) -> int:
    """The overall grpc.health.v1 status of the server at `addr` (raises if unreachable)."""
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5.0)
        return int(reply.status)


async def health_reaches(addrs: Mapping[str, str], status: int, within: float = 30.0) -> None:
    """Until every server in `addrs` (name -> address) reports `status` on grpc.health.v1."""

    async def reached() -> bool:
        got = {name: await health(addr) for name, addr in addrs.items()}
        assert all(s == status for s in got.values()), got
        return True

    await eventually(reached, within=within, interval=0.1, message=f"health {status}")
