"""The agent's inbox: a long blocking read of new deliveries, and on stop what is left in it."""

from __future__ import annotations

from collections.abc import Collection
from typing import cast

import redis.asyncio as aioredis

from hivewire.agent._session import Identity

# An idle agent's inbox read blocks this long (on a connection of its own): it wakes for work,
# not on a timer. A stop cancels the read and collects what it may have left (`left_over`).
READ_BLOCK_MS = 30_000

Entry = tuple[bytes, dict[bytes, bytes]]


def _entries(reply: object) -> list[Entry]:
    streams = cast(list[tuple[bytes, list[Entry]]], reply or [])
    return [entry for _stream, entries in streams for entry in entries]


async def read_new(
    reads: aioredis.Redis, identity: Identity, count: int, block_ms: int = READ_BLOCK_MS
) -> list[Entry]:
    """Up to `count` new deliveries, waiting up to `block_ms` for the first."""
    reply = await reads.xreadgroup(
        identity.inbox_group,
        identity.agent_id,
        {identity.inbox_stream: ">"},
        count=count,
        block=block_ms,
    )
    return _entries(reply)


async def left_over(
    redis: aioredis.Redis, identity: Identity, batch: int, running: Collection[bytes]
) -> list[Entry]:
    """What a stopping agent must still run: entries delivered to it that it never started (a
    cancelled read may have taken them), then those never delivered, read `batch` at a time.
    Once the registry has the agent DRAINING no new ones arrive, so after this nothing is left
    behind in the inbox."""
    out: list[Entry] = []
    for start in ("0", ">"):  # "0": after this id, the entries pending with this consumer
        while True:
            reply = await redis.xreadgroup(
                identity.inbox_group, identity.agent_id, {identity.inbox_stream: start}, count=batch
            )
            entries = _entries(reply)
            out += [(entry_id, fields) for entry_id, fields in entries if fields]
            if len(entries) < batch:
                break
            if start != ">":
                start = entries[-1][0].decode()
    return [(entry_id, fields) for entry_id, fields in out if entry_id not in running]
