"""What an agent stream sends: a bounded queue that ends once, OK or with an error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hivewire.v1 import agent_service_pb2 as pb

_END = pb.ConnectResponse()  # marks the end of the queue (compared by identity)


class Outbox:
    """Messages in order; `end()` after them, or `fail()` at once (dropping them)."""

    def __init__(self, size: int) -> None:
        self._queue: asyncio.Queue[pb.ConnectResponse] = asyncio.Queue(size)
        self.ended = False
        self.error: BaseException | None = None

    async def put(self, msg: pb.ConnectResponse) -> None:
        """Queue `msg`, waiting for room (the agent reads slowly: back-pressure)."""
        if not self.ended:
            await self._queue.put(msg)

    def put_now(self, msg: pb.ConnectResponse) -> bool:
        """Queue `msg` if there is room; False if the queue is full."""
        if self.ended:
            return True
        try:
            self._queue.put_nowait(msg)
        except asyncio.QueueFull:
            return False
        return True

    async def end(self, error: BaseException | None = None, within: float | None = None) -> None:
        """End after what is queued (OK, or with `error`); if that does not fit in the queue
        within `within` seconds (the agent stopped reading), end now."""
        if self.ended:
            return
        self.ended = True
        self.error = error
        try:
            async with asyncio.timeout(within):
                await self._queue.put(_END)
        except TimeoutError:
            self._end_now()

    def fail(self, error: BaseException) -> None:
        """End now with `error`; what was not sent yet is dropped."""
        if self.ended:
            return
        self.ended = True
        self.error = error
        self._end_now()

    def close(self) -> None:
        """Take nothing more (the stream is over)."""
        self.ended = True

    def _end_now(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END)

    async def messages(self) -> AsyncIterator[pb.ConnectResponse]:
        """Every message until the end; then the error, if it ended with one."""
        while (msg := await self._queue.get()) is not _END:
            yield msg
        if self.error is not None:
            raise self.error
