"""The client's loops over single calls: every item of a paged list, and polling until done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Container, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class _HasState(Protocol):
    @property
    def state(self) -> int: ...


S = TypeVar("S", bound=_HasState)


async def every_item(page: Callable[[str], Awaitable[tuple[list[T], str]]]) -> AsyncIterator[T]:
    """Items of all pages; `page(token)` returns one page and the next token ('' on the last)."""
    token = ""
    while True:
        items, token = await page(token)
        for item in items:
            yield item
        if not token:
            return


async def poll(
    get: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    delays: Iterator[float],
    within: float,
    what: str,
) -> T:
    """`get()` until `done`, sleeping `delays` between calls; TimeoutError past `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        item = await get()
        if done(item):
            return item
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{what} not finished after {within}s")
        await asyncio.sleep(min(next(delays), left))


async def poll_state(
    get: Callable[[], Awaitable[S]],
    terminal: Container[int],
    delays: Iterator[float],
    within: float,
    what: str,
) -> S:
    """`poll` until the item's state is one of `terminal`."""
    return await poll(get, lambda item: item.state in terminal, delays, within, what)
