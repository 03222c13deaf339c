"""RPCs declared as class attributes of a servicer, which grpc and mypy see as bound methods."""

from __future__ import annotations

import functools
from collections.abc import Awaitable
from typing import Any, Generic, Protocol, Self, TypeVar, overload

In = TypeVar("In")
In_contra = TypeVar("In_contra", contravariant=True)


class Rpc(Protocol[In_contra]):
    """A servicer method bound to its servicer, as grpc calls it."""

    def __call__(self, request: In_contra, context: Any) -> Awaitable[Any]: ...


class RpcAttribute(Generic[In]):
    """Base of RPCs declared as class attributes; a subclass defines `_call`.

    Reading the attribute on a servicer gives a coroutine function (what grpc.aio requires of a
    unary handler); mypy checks its request type against the generated servicer's method.
    """

    @overload
    def __get__(self, servicer: None, owner: type) -> Self: ...
    @overload
    def __get__(self, servicer: object, owner: type) -> Rpc[In]: ...
    def __get__(self, servicer: object, owner: type) -> Any:
        if servicer is None:
            return self
        return functools.partial(self._call, servicer)

    async def _call(self, servicer: Any, request: In, context: Any) -> Any:
        raise NotImplementedError
