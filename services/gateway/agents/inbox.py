"""Reading an agent's inbox for its stream: new entries bounded by its free slots, and on a
resume the entries it was sent before and never finished (its pending entries)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError
from redis.exceptions import ResponseError

from hivewire.core.result_writer import Receipt, acknowledge
from hivewire.core.wire import ENVELOPE_FIELD
from hivewire.v1 import stream_pb2
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis
from hivewire_services.common.streams import Entry, GroupOptions, GroupReader, read_entries
from hivewire_services.gateway.agents.identity import Identity
from hivewire_services.gateway.agents.slots import Slots

logger = logging.getLogger(__name__)

# A blocking read wakes this often while the inbox is idle (new entries end it at once).
BLOCK_MS = 10_000
PENDING_BATCH = 256

Send = Callable[[stream_pb2.TaskEnvelope], None]


class InboxGone(Exception):
    """The agent's inbox (or its group) is gone: the coordinator reclaimed it after the agent's
    lease ran out, so the identity is lost."""


def lost(exc: ResponseError) -> bool:
    """NOGROUP, or UNBLOCKED when the inbox is deleted during a blocking read."""
    text = str(exc)
    return text.startswith("NOGROUP") or text.startswith("UNBLOCKED")


async def pending(redis: Redis, identity: Identity) -> list[tuple[stream_pb2.TaskEnvelope, bytes]]:
    """The entries the agent was sent and never finished (its pending ones), oldest first."""
    found: list[tuple[stream_pb2.TaskEnvelope, bytes]] = []
    start: bytes | str = "0"
    while True:
        try:
            reply = await redis.xreadgroup(
                identity.inbox_group,
                identity.agent_id,
                {identity.inbox: start},
                count=PENDING_BATCH,
            )
        except ResponseError as exc:
            if lost(exc):
                raise InboxGone(identity.inbox) from exc
            raise
        entries = read_entries(reply)
        if not entries:
            return found
        for entry_id, fields in entries:
            envelope = await envelope_of(redis, identity, entry_id, fields)
            if envelope is not None:
                found.append((envelope, entry_id))
        start = entries[-1][0]


async def envelope_of(
    redis: Redis, identity: Identity, entry_id: bytes, fields: dict[bytes, bytes] | None
) -> stream_pb2.TaskEnvelope | None:
    """An entry's envelope; a deleted or malformed entry is acknowledged and skipped."""
    try:
        envelope = stream_pb2.TaskEnvelope.FromString((fields or {})[ENVELOPE_FIELD])
    except (KeyError, DecodeError):
        logger.error("dropping malformed or deleted inbox entry %r", entry_id)
        await acknowledge(redis, Receipt(identity.inbox, identity.inbox_group, entry_id))
        return None
    if not envelope.agent_id:
        envelope.agent_id = identity.agent_id
    return envelope


class Inbox:
    """XREADGROUP on the agent's inbox as consumer `agent_id`, with COUNT = free slots."""

    def __init__(self, redis: Redis, identity: Identity, slots: Slots, send: Send) -> None:
        self._redis = redis
        self._identity = identity
        self._slots = slots
        self._send = send
        options = GroupOptions(
            stream=identity.inbox,
            group=identity.inbox_group,
            consumer=identity.agent_id,
            batch=slots.max_concurrency,
            block_ms=BLOCK_MS,
            create=False,
        )
        self._reader = GroupReader(
            redis,
            options,
            self._assign,
            name=f"inbox of agent {identity.agent_id}",
            capacity=slots.wait_free,
        )

    async def run(self) -> None:
        """Read until cancelled; raises InboxGone."""
        backoff = Backoff()
        while True:
            try:
                await self._reader.read_once()
                backoff.reset()
            except ResponseError as exc:
                if lost(exc):
                    raise InboxGone(self._identity.inbox) from exc
                raise
            except REDIS_UNAVAILABLE as exc:
                await backoff.failed(self._reader.name, exc)

    async def _assign(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            envelope = await envelope_of(self._redis, self._identity, entry_id, fields)
            if envelope is not None:
                self._slots.add(envelope, entry_id)
                self._send(envelope)
