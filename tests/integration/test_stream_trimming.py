"""Trimming never drops an entry a consumer group has not acknowledged, and bounds the rest."""

from __future__ import annotations

from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.trimmer import StreamTrimmer
from tests.settings import StackSettings


async def fill(redis: Redis, key: str, n: int) -> list[bytes]:
    return [await redis.xadd(key, {"n": str(i)}) for i in range(n)]


async def test_without_groups_the_stream_is_cut_to_maxlen(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    await fill(redis, keys.events, 50)
    trimmer = StreamTrimmer(redis, keys, settings)
    assert await trimmer.trim(keys.events, 20) == 30
    assert await redis.xlen(keys.events) == 20
    assert await trimmer.trim(keys.events, 20) == 0


async def test_pending_and_unread_entries_of_a_group_are_kept(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    ids = await fill(redis, keys.events, 50)
    await redis.xgroup_create(keys.events, "hooks", id="0")
    await redis.xreadgroup("hooks", "c1", {keys.events: ">"}, count=30)
    await redis.xack(keys.events, "hooks", *ids[:10], *ids[11:30])  # ids[10] stays pending
    trimmer = StreamTrimmer(redis, keys, settings)
    assert await trimmer.trim(keys.events, 5) == 10
    [(first, _)] = await redis.xrange(keys.events, count=1)
    assert first == ids[10]
    pending = await redis.xpending(keys.events, "hooks")
    assert pending["pending"] == 1
    # Once acknowledged, the group holds back only what it has not read (ids[30:]).
    await redis.xack(keys.events, "hooks", ids[10])
    assert await trimmer.trim(keys.events, 5) == 20
    [(first, _)] = await redis.xrange(keys.events, count=1)
    assert first == ids[30]
    # Read and acknowledged all: the maxlen bound applies again.
    await redis.xreadgroup("hooks", "c1", {keys.events: ">"}, count=100)
    await redis.xack(keys.events, "hooks", *ids[30:])
    assert await trimmer.trim(keys.events, 5) == 15
    assert await redis.xlen(keys.events) == 5
