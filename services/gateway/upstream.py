"""Forwarding a checked request to the coordinator or registry: one deadline, one unwrap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from google.protobuf.message import Message

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Enveloped(Protocol[T_co]):
    """An upstream reply: the public response inside a `CoordinatorService...Response`."""

    @property
    def response(self) -> T_co: ...


async def forward(
    call: Callable[..., Awaitable[Enveloped[T]]], envelope: Message, deadline: float
) -> T:
    """Send `envelope` through the stub method `call` with a deadline; the public reply inside.

    An upstream error propagates as AioRpcError: the error interceptor passes its code and
    rich details through unchanged.
    """
    reply = await call(envelope, timeout=deadline)
    return reply.response
