"""The client's loops over single calls: every item of a paged list, and polling until done."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


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
