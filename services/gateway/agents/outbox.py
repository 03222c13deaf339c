"""What an agent stream sends, batched: whatever accumulates while a message is being sent goes
in the next one, so a busy stream pays one message per batch. It ends once, OK or with an error.

Bounded by construction: assignments never exceed the agent's slots (each holds one until its
result is stored), acks are one per assignment finished, cancels are dropped past a bound (the
next heartbeat repeats them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hivewire.v1 import agent_service_pb2 as pb
from hivewire.v1 import stream_pb2

# Most bytes of assignments per message (a larger single one goes alone): well under the
# 8 MiB message limit, small enough that one message never holds the stream long.
MAX_BATCH_BYTES = 1 << 20
MAX_CANCELS = 10_000


class Outbox:
    """Pending assignments, acks and cancels; `messages()` sends them until the end."""

    def __init__(self, max_acks: int) -> None:
        self._assignments: list[stream_pb2.TaskEnvelope] = []
        self._acks: list[pb.ResultAck] = []
        self._cancels: dict[str, None] = {}
        self._drain: bool | None = False  # True: tell the agent it was drained; None: told
        self._max_acks = max_acks
        self._wake = asyncio.Event()
        self._sent = asyncio.Event()
        self.ended = False
        self.error: BaseException | None = None

    def assign(self, envelope: stream_pb2.TaskEnvelope) -> None:
        if not self.ended:
            self._assignments.append(envelope)
            self._wake.set()

    def ack(self, ack: pb.ResultAck) -> bool:
        """Queue an ack; False when more are waiting than the agent has slots (it does not
        read its stream)."""
        if self.ended:
            return True
        if len(self._acks) >= self._max_acks:
            return False
        self._acks.append(ack)
        self._wake.set()
        return True

    def cancel(self, task_ids: list[str]) -> None:
        if not self.ended and len(self._cancels) < MAX_CANCELS:
            self._cancels.update(dict.fromkeys(task_ids))
            self._wake.set()

    def drain(self) -> None:
        """Tell the agent it was drained (DrainAgent), once."""
        if not self.ended and not self._drain:
            self._drain = True
            self._wake.set()

    async def end(self, error: BaseException | None = None, within: float | None = None) -> None:
        """End once what is queued is sent (OK, or with `error`); if that takes longer than
        `within` seconds (the agent stopped reading), end now."""
        if self.ended:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while self._pending():
                    self._sent.clear()
                    await self._sent.wait()
        self.fail(error)

    def fail(self, error: BaseException | None) -> None:
        """End now (with `error`, or OK when None); what was not sent yet is dropped."""
        if self.ended:
            return
        self.ended = True
        self.error = error
        self._assignments.clear()
        self._acks.clear()
        self._cancels.clear()
        self._wake.set()

    def close(self) -> None:
        """Take nothing more (the stream is over)."""
        self.fail(None)

    def _pending(self) -> bool:
        return bool(self._assignments or self._acks or self._cancels or self._drain is True)

    async def messages(self) -> AsyncIterator[pb.ConnectResponse]:
        """Batches as they accumulate until the end; then the error, if it ended with one."""
        while not self.ended:
            if not self._pending():
                self._wake.clear()
                await self._wake.wait()
                continue
            for msg in self._take():
                yield msg  # returns once gRPC took it: meanwhile the next batch accumulates
            self._sent.set()
        if self.error is not None:
            raise self.error

    def _take(self) -> list[pb.ConnectResponse]:
        out: list[pb.ConnectResponse] = []
        if self._drain is True:
            out.append(pb.ConnectResponse(drain=pb.AgentDrainRequest()))
            self._drain = None  # sent
        if self._cancels:
            out.append(pb.ConnectResponse(cancel=pb.TaskCancel(task_ids=list(self._cancels))))
            self._cancels.clear()
        if self._acks:
            out.append(pb.ConnectResponse(acks=pb.ResultAcks(acks=self._acks)))
            self._acks = []
        while self._assignments:
            size, n = 0, 0
            for envelope in self._assignments:
                size += envelope.ByteSize()
                if n and size > MAX_BATCH_BYTES:
                    break
                n += 1
            batch, self._assignments = self._assignments[:n], self._assignments[n:]
            out.append(pb.ConnectResponse(assignments=pb.TaskAssignments(tasks=batch)))
        return out
