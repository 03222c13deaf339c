"""The one consumer-group reader against a real Redis: failures, BUSYGROUP, NOGROUP, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ResponseError

from hivewire.core.background import cancel_and_wait
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry, GroupOptions, GroupReader
from tests.waiting import eventually


class Recorder:
    """A handler that fails its first `failures` calls and records what it handled."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = 0
        self.handled: list[bytes] = []

    async def __call__(self, entries: list[Entry]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("handler failed")
        self.handled += [entry_id for entry_id, _ in entries]


@pytest.fixture
def stream(keys: Keys) -> str:
    return f"{keys.events}:reader-test"


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    await cancel_and_wait(tasks)


async def pending(redis: Redis, stream: str) -> int:
    return int((await redis.xpending(stream, "g"))["pending"])


async def nothing_pending(redis: Redis, stream: str) -> bool:
    return await pending(redis, stream) == 0


async def add(redis: Redis, stream: str, n: int) -> list[bytes]:
    return [await redis.xadd(stream, {b"n": str(i).encode()}) for i in range(n)]


async def test_a_failed_batch_stays_pending_and_is_claimed_again(
    redis: Redis, stream: str, running: list[asyncio.Task[None]]
) -> None:
    ids = await add(redis, stream, 3)  # before the group: it starts at "0"
    handler = Recorder(failures=1)
    options = GroupOptions(stream, "g", "c1", block_ms=100, claim_idle=0.2, ack=True)
    running.append(asyncio.create_task(GroupReader(redis, options, handler, name="t").run()))
    await eventually(lambda: handler.calls >= 1)
    assert handler.handled == []
    assert await pending(redis, stream) == 3  # read, not acknowledged
    await eventually(lambda: len(handler.handled) == 3, within=10)
    assert handler.handled == ids
    await eventually(lambda: nothing_pending(redis, stream))


async def test_another_consumers_abandoned_entries_are_taken_over(
    redis: Redis, stream: str, running: list[asyncio.Task[None]]
) -> None:
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    ids = await add(redis, stream, 2)
    await redis.xreadgroup("g", "dead", {stream: ">"}, count=10)  # read, never acknowledged
    handler = Recorder()
    # BUSYGROUP on start is fine: the group created above is used as it is.
    options = GroupOptions(stream, "g", "c2", block_ms=100, claim_idle=0.1, ack=True)
    running.append(asyncio.create_task(GroupReader(redis, options, handler, name="t").run()))
    await eventually(lambda: handler.handled == ids, within=10)
    later = await add(redis, stream, 1)
    await eventually(lambda: handler.handled == ids + later)
    await eventually(lambda: nothing_pending(redis, stream))


async def test_only_busygroup_is_ignored_when_creating_the_group(redis: Redis, stream: str) -> None:
    reader = GroupReader(redis, GroupOptions(stream, "g", "c"), Recorder(), name="t")
    await reader.ensure_group()
    await reader.ensure_group()  # BUSYGROUP
    await redis.set(f"{stream}:string", "x")
    wrong = GroupReader(redis, GroupOptions(f"{stream}:string", "g", "c"), Recorder(), name="t")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await wrong.ensure_group()


async def test_a_deleted_group_is_created_again(
    redis: Redis, stream: str, running: list[asyncio.Task[None]]
) -> None:
    handler = Recorder()
    options = GroupOptions(stream, "g", "c", block_ms=100, ack=True)
    running.append(asyncio.create_task(GroupReader(redis, options, handler, name="t").run()))
    first = await add(redis, stream, 1)
    await eventually(lambda: handler.handled == first)
    await redis.xgroup_destroy(stream, "g")  # as after FLUSHALL or a restart without data
    second = await add(redis, stream, 1)
    # The re-created group starts at "0": the first entry is delivered once more.
    await eventually(lambda: handler.handled == first + first + second, within=10)
    assert [g["name"] for g in await redis.xinfo_groups(stream)] == [b"g"]


async def test_drain_of_a_missing_group_handles_nothing(redis: Redis, stream: str) -> None:
    handler = Recorder()
    options = GroupOptions(stream, "g", "c", claim_idle=0.0, create=False)
    assert await GroupReader(redis, options, handler, name="t").drain() == 0
    assert handler.calls == 0 and not await redis.exists(stream)


async def test_drain_reads_unread_then_claims_pending_and_acks_deleted(
    redis: Redis, stream: str
) -> None:
    await redis.xgroup_create(stream, "g", id="0", mkstream=True)
    ids = await add(redis, stream, 4)
    await redis.xreadgroup("g", "agent", {stream: ">"}, count=2)  # 2 pending, 2 unread
    await redis.xdel(stream, ids[0])  # pending, but the entry is gone
    handler = Recorder()
    options = GroupOptions(stream, "g", "c", batch=1, claim_idle=0.0, create=False, ack=True)
    assert await GroupReader(redis, options, handler, name="t").drain() == 3
    assert handler.handled == [ids[2], ids[3], ids[1]]
    assert await pending(redis, stream) == 0


async def test_cancel_stops_a_reader_blocked_in_redis_promptly(redis: Redis, stream: str) -> None:
    handler = Recorder()
    options = GroupOptions(stream, "g", "c", block_ms=4000)
    task = asyncio.create_task(GroupReader(redis, options, handler, name="t").run())
    await eventually(lambda: redis.exists(stream))
    await eventually(lambda: _blocked(redis))
    started = time.monotonic()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1.0)
    assert done == {task} and task.cancelled()
    assert time.monotonic() - started < 1.0


async def _blocked(redis: Redis) -> bool:
    """A client of this test is blocked in XREADGROUP."""
    return any(c.get("cmd") == "xreadgroup" for c in await redis.client_list())
