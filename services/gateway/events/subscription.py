"""One subscriber of the events hub: a filter, a bounded queue, catch-up from a cursor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hivewire.v1 import event_pb2
from hivewire_services.common.errors import HivewireError
from hivewire_services.gateway.events.filter import EventFilter, StreamId, format_stream_id

if TYPE_CHECKING:
    from hivewire_services.gateway.events.hub import EventsHub

_Item = tuple[StreamId, event_pb2.Event]


@dataclass(eq=False)
class Subscription:
    """One subscriber: a filter, a bounded queue the hub fills, and why it was cut off."""

    hub: EventsHub
    filter: EventFilter
    since: StreamId | None
    queue: asyncio.Queue[_Item | None]
    last_delivered: str = ""
    error: HivewireError | None = None
    _registered: bool = field(default=False, repr=False)

    async def open(self) -> None:
        """Check the cursor; a live subscriber (no cursor) is registered before this returns."""
        await self.hub.ready()
        if self.since is None:
            position = self.hub._register(self)
            # Nothing delivered yet: resuming from the registration point loses nothing.
            self.last_delivered = format_stream_id(position) if position else ""
        else:
            await self.hub._check_not_trimmed(self.since)
            self.last_delivered = format_stream_id(self.since)

    def close(self) -> None:
        self.hub._unregister(self)

    def _cut_off(self, error: HivewireError) -> None:
        self.error = error
        self.hub._unregister(self)
        if not self.queue.full():
            self.queue.put_nowait(None)  # wake a consumer blocked on an empty queue

    async def __aiter__(self) -> AsyncIterator[event_pb2.Event]:
        async for batch in self.batches(None, 1):
            for event in batch or ():
                yield event

    async def batches(
        self, idle: float | None, limit: int
    ) -> AsyncIterator[list[event_pb2.Event] | None]:
        """Events after the start point, up to `limit` at a time when several are waiting
        (never waiting to fill a batch); None each time nothing arrived for `idle` seconds."""
        last: StreamId | None = self.since
        if last is not None:
            batch: list[event_pb2.Event] = []
            async for sid, event in self._catch_up(last):
                last = sid
                batch.append(event)
                if len(batch) >= limit:
                    self.last_delivered = batch[-1].cursor
                    yield batch
                    batch = []
            if batch:
                self.last_delivered = batch[-1].cursor
                yield batch
        while True:
            try:
                # A busy stream takes what is queued without waiting; wait_for (a task per
                # call) only when the queue is empty.
                item = (
                    self.queue.get_nowait()
                    if not self.queue.empty()
                    else await asyncio.wait_for(self.queue.get(), idle)
                )
            except TimeoutError:
                if self.error is not None:
                    raise self.error from None
                yield None
                continue
            if self.error is not None:
                raise self.error
            batch = []
            # No await below: the hub cannot cut this subscriber off while the batch forms.
            while True:
                if item is not None and (last is None or item[0] > last):
                    last = item[0]  # older ones were already delivered by the catch-up read
                    batch.append(item[1])
                if len(batch) >= limit or self.queue.empty():
                    break
                item = self.queue.get_nowait()
            if batch:
                self.last_delivered = batch[-1].cursor
                yield batch

    async def _catch_up(self, after: StreamId) -> AsyncIterator[_Item]:
        """Read history after `after` to the tail, register, then read up to the hub's position.

        Registering only near the tail keeps a long backlog from overflowing the live queue;
        the live queue then starts right after the hub position read in the same step.
        """
        last = after
        while True:
            page = await self.hub._range(last, None)
            for item in page:
                last = item[0]
                if self.filter.matches(item[1]):
                    yield item
            if len(page) < self.hub.count:
                break
        position = self.hub._register(self)
        while position is not None and last < position:
            page = await self.hub._range(last, position)
            for item in page:
                last = item[0]
                if self.filter.matches(item[1]):
                    yield item
            if len(page) < self.hub.count:
                break
