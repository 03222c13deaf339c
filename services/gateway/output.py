"""Reading a task's output stream (StreamTaskOutput): replay from a cursor, then optionally follow.

A follower blocks in XREAD on the task's output stream, on a connection of its own (a pool
sized to the follower limit, so followers never starve the gateway's other Redis calls). It
stops once the task is terminal and everything was sent: the coordinator appends an `end` entry
to a task's output when the task finishes, which wakes the follower at once; a task that never
wrote output has no stream to wake anyone, so each blocking read also times out after
FOLLOW_BLOCK_S to look at the task's state.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import cast

from hivewire.v1 import stream_pb2, task_pb2
from hivewire_services.common import tenancy
from hivewire_services.common.errors import NotFound, ResourceExhausted, Unavailable
from hivewire_services.common.keys import Keys
from hivewire_services.common.output import END_FIELD, chunk_of
from hivewire_services.common.redis import Redis

logger = logging.getLogger(__name__)

FOLLOW_BLOCK_S = 1.0
"""Longest a follower waits in one XREAD before it looks at the task's state."""
PAGE = 500
"""Entries read per XREAD."""
FRAME_BYTES = 1024 * 1024
"""A frame closes once its chunks hold this many bytes of text (well below gRPC's limit)."""
TERMINAL_STATES = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
        task_pb2.TASK_STATE_TIMED_OUT,
    }
)
_Entries = list[tuple[bytes, dict[bytes, bytes]]]


class OutputReader:
    """Replays and follows task output; at most `max_followers` follow at once."""

    def __init__(self, redis: Redis, follow_redis: Redis, keys: Keys, max_followers: int) -> None:
        self.redis = redis
        self.follow_redis = follow_redis
        self.keys = keys
        self.max_followers = max_followers
        self.followers = 0
        self._stopping = False

    def stop(self) -> None:
        """End every follower at its next wake-up (within FOLLOW_BLOCK_S) with UNAVAILABLE."""
        self._stopping = True

    async def read(
        self, task_id: str, after: str, follow: bool
    ) -> AsyncIterator[list[stream_pb2.OutputChunk]]:
        """Frames of consecutive chunks after the cursor `after` ('0-0': from the start).

        NotFound for an unknown task or one of a tenant the caller does not see;
        ResourceExhausted when `follow` would pass the limit.
        """
        state, tenant = await self.redis.hmget(self.keys.task(task_id), ["state", "tenant"])
        if state is None or not tenancy.visible(tenant):
            raise NotFound(f"task {task_id} not found", reason="TASK_NOT_FOUND")
        if not follow:
            async for frame in self._replay(task_id, after):
                yield frame
            return
        if self.followers >= self.max_followers:
            raise ResourceExhausted(
                f"this gateway already serves {self.max_followers} output followers",
                reason="TOO_MANY_FOLLOWERS",
            )
        self.followers += 1
        try:
            async for frame in self._follow(task_id, after):
                yield frame
        finally:
            self.followers -= 1

    async def _replay(
        self, task_id: str, after: str
    ) -> AsyncIterator[list[stream_pb2.OutputChunk]]:
        key = self.keys.output(task_id)
        while True:
            entries = await self._xread(self.redis, key, after, None)
            if not entries:
                return
            after = entries[-1][0].decode()
            for frame in _frames(entries):
                yield frame
            if len(entries) < PAGE:
                return

    async def _follow(
        self, task_id: str, after: str
    ) -> AsyncIterator[list[stream_pb2.OutputChunk]]:
        key = self.keys.output(task_id)
        block_ms = int(FOLLOW_BLOCK_S * 1000)
        while not self._stopping:
            entries = await self._xread(self.follow_redis, key, after, block_ms)
            if entries:
                after = entries[-1][0].decode()
                for frame in _frames(entries):
                    yield frame
                ended = any(END_FIELD in fields for _, fields in entries)
                if len(entries) == PAGE or not ended:
                    continue
            # An `end` entry, or a quiet stream: done once the task is terminal (a dead letter
            # put back in its queue runs again after its `end`) or gone (retention).
            state = await self._state(task_id)
            if state is None or state in TERMINAL_STATES:
                async for frame in self._replay(task_id, after):  # written before the end
                    yield frame
                return
        raise Unavailable(
            "the gateway is stopping; resume after the last cursor received",
            reason="SHUTTING_DOWN",
            metadata={"cursor": after},
        )

    async def _state(self, task_id: str) -> int | None:
        raw = await self.redis.hget(self.keys.task(task_id), "state")
        return None if raw is None else int(raw)

    async def _xread(self, redis: Redis, key: str, after: str, block: int | None) -> _Entries:
        reply = await redis.xread({key: after}, count=PAGE, block=block)
        if not reply:
            return []
        [(_, entries)] = cast(list[tuple[bytes, _Entries]], reply)
        return entries


def _frames(entries: _Entries) -> list[list[stream_pb2.OutputChunk]]:
    """The chunks of `entries` (end entries left out) as frames of at most FRAME_BYTES."""
    frames: list[list[stream_pb2.OutputChunk]] = []
    frame: list[stream_pb2.OutputChunk] = []
    size = 0
    for entry_id, fields in entries:
        chunk = chunk_of(entry_id, fields)
        if chunk is None:
            continue
        if frame and size + len(chunk.text) > FRAME_BYTES:
            frames.append(frame)
            frame, size = [], 0
        frame.append(chunk)
        size += len(chunk.text)
    if frame:
        frames.append(frame)
    return frames
