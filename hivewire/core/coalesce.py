"""Concurrent calls coalesced: those made while one is in flight go together as one batch.

A call that finds none in flight yields for one turn of the event loop, so that calls made in
the same turn (callers woken together) go with it as one batch; alone, it is then sent through
`send_one`: an idle caller adds one loop turn of latency, microseconds. Calls made while one is
in flight wait for it, then go together (`send_batch`, at most
`max_batch` items and `max_bytes` of them by `size`, all of one `key`: the oldest waiting
call's). The waiting list holds only calls in flight, so whatever bounds the callers bounds it.
A caller that gives up while it waits is dropped before its batch is sent; one that gives up
after is not told (its item was sent, as an uncoalesced call's would have been). The drain ends
by itself once nobody waits.

Used by the client SDK (submits to the gateway), the gateway (submits to the coordinator) and
the coordinator (submit script calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")


class Coalescer(Generic[Item, Out]):
    """Sends items through `send_one` when idle, else through `send_batch(key, items)`, which
    returns one outcome per item in order: its result, or the exception its caller gets."""

    def __init__(
        self,
        send_one: Callable[[Item], Awaitable[Out]],
        send_batch: Callable[[Hashable, list[Item]], Awaitable[Sequence[Out | BaseException]]],
        *,
        max_batch: int,
        key: Callable[[], Hashable] = lambda: None,
        size: Callable[[Item], int] = lambda _: 0,
        max_bytes: int = 0,
        name: str = "coalescer",
    ) -> None:
        self._send_one = send_one
        self._send_batch = send_batch
        self._max_batch = max(1, max_batch)
        self._key = key
        self._size = size
        self._max_bytes = max_bytes
        self._name = name
        self._busy = False
        self._waiting: list[tuple[Hashable, Item, asyncio.Future[Out]]] = []
        self._drainer: asyncio.Task[None] | None = None
        self.batches = 0
        """Batches sent (for tests and metrics)."""

    @property
    def waiting(self) -> int:
        """Calls waiting for the one in flight to end."""
        return len(self._waiting)

    async def call(self, item: Item) -> Out:
        if self._busy:
            return await self._wait(item, first=False)
        self._busy = True
        try:
            # Callers woken together (by the batch before, or by requests that arrived
            # together) call in the same turn of the loop: yield once so they go with this one
            # in one batch, not this one alone and then the rest. Alone, this costs one turn.
            await asyncio.sleep(0)
        except BaseException:
            self._release()
            raise
        if self._waiting:
            self._drainer = asyncio.create_task(self._drain(), name=self._name)
            return await self._wait(item, first=True)
        try:
            return await self._send_one(item)
        finally:
            self._release()

    async def _wait(self, item: Item, *, first: bool) -> Out:
        """Wait for `item` to go in a batch (`first`: ahead of those already waiting)."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        entry = (self._key(), item, future)
        if first:
            self._waiting.insert(0, entry)
        else:
            self._waiting.append(entry)
        return await future

    async def close(self) -> None:
        """Stop sending; calls still waiting are cancelled."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        for _, _, future in self._waiting:
            future.cancel()
        self._waiting.clear()

    def _release(self) -> None:
        """Hand what arrived meanwhile to the drainer (this caller returns now), or go idle."""
        if self._waiting:
            self._drainer = asyncio.create_task(self._drain(), name=self._name)
        else:
            self._busy = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self._send(*self._take())
        finally:
            self._busy = False
            self._drainer = None
            for _, _, future in self._waiting:  # only when the drain itself was cancelled
                future.cancel()
            self._waiting.clear()

    def _take(self) -> tuple[Hashable, list[tuple[Item, asyncio.Future[Out]]]]:
        """The oldest live call's key and its calls within the bounds (one at least)."""
        live = [w for w in self._waiting if not w[2].done()]
        if not live:
            self._waiting.clear()
            return None, []
        key = live[0][0]
        batch: list[tuple[Item, asyncio.Future[Out]]] = []
        rest: list[tuple[Hashable, Item, asyncio.Future[Out]]] = []
        size = 0
        for waiting in live:
            k, item, future = waiting
            item_size = self._size(item) if self._max_bytes else 0
            fits = len(batch) < self._max_batch and (
                not self._max_bytes or size + item_size <= self._max_bytes
            )
            if k == key and (fits or not batch):
                batch.append((item, future))
                size += item_size
            else:
                rest.append(waiting)
        self._waiting = rest
        return key, batch

    async def _send(self, key: Hashable, batch: list[tuple[Item, asyncio.Future[Out]]]) -> None:
        if not batch:
            return
        outcomes: Sequence[Out | BaseException]
        try:
            self.batches += 1
            outcomes = await self._send_batch(key, [item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # the batch's failure is every caller's
            outcomes = [exc] * len(batch)
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
