"""The events hub on its own: paged catch-up under concurrent writes, and Redis outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.gateway.events.hub import EventFilter, EventsHub, parse_stream_id
from tests.waiting import eventually


async def _xadd(redis: Redis, key: str, message: str) -> str:
    event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TASK_SUBMITTED, message=message)
    entry_id = await redis.xadd(key, {EVENT_FIELD: event.SerializeToString()})
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def test_catch_up_then_live_under_concurrent_writes(redis: Redis, keys: Keys) -> None:
    history = [await _xadd(redis, keys.events, f"h{i}") for i in range(25)]
    hub = EventsHub(redis, keys.events, queue_size=1000, count=3, block_ms=200)
    hub.start()
    written: list[str] = []

    async def writer() -> None:
        for i in range(40):
            written.append(await _xadd(redis, keys.events, f"w{i}"))
            if i % 4 == 0:
                await asyncio.sleep(0)  # pacing: let the reader run between the writes

    try:
        sub = hub.subscribe(EventFilter(), parse_stream_id(history[4], "since_cursor"))
        await sub.open()
        writing = asyncio.create_task(writer())
        got: list[str] = []
        events = aiter(sub)
        try:
            while len(got) < 20 + 40:
                got.append((await asyncio.wait_for(anext(events), 5)).cursor)
        finally:
            sub.close()
            await writing
        assert got == history[5:] + written
        assert sub.last_delivered == written[-1]
        assert hub.subscriber_count == 0
    finally:
        await hub.stop()


async def test_reader_recovers_from_a_redis_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedRedis(0, tmp_path, appendonly=False)
    server.start()
    redis = create_redis(server.url, retries=0)
    key = Keys("outage").events
    hub = EventsHub(redis, key, queue_size=10, block_ms=100, max_backoff=0.2)
    hub.start()
    try:
        sub = hub.subscribe(EventFilter(), None)
        await sub.open()
        events = aiter(sub)
        before = await _xadd(redis, key, "before")
        assert (await asyncio.wait_for(anext(events), 5)).cursor == before
        server.kill()

        def outage_seen() -> bool:  # the reader's retry logs the outage
            return f"fan-out of {key}: redis unavailable" in caplog.text

        await eventually(outage_seen, within=10, message="the reader meeting the outage")
        server.start()
        after = await _xadd(redis, key, "after")
        event = await asyncio.wait_for(anext(events), 10)
        assert (event.cursor, event.message) == (after, "after")
        sub.close()
    finally:
        await hub.stop()
        await redis.aclose()
        server.stop()


async def _xreads(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def test_listeners_alone_are_paced_until_a_subscriber_comes(redis: Redis, keys: Keys) -> None:
    hub = EventsHub(redis, keys.events, queue_size=100, block_ms=200, listener_pace=30.0)
    heard: list[str] = []
    hub.add_listener(lambda event: heard.append(event.message))
    hub.start()
    try:
        await hub.ready()
        await _xadd(redis, keys.events, "first")
        await eventually(lambda: heard == ["first"], message="the listener heard the first")
        # The hub now pauses (30 s): writes meanwhile cost no read each.
        before = await _xreads(redis)
        written = [await _xadd(redis, keys.events, f"e{i}") for i in range(20)]
        assert await _xreads(redis) - before <= 1
        # A subscriber cuts the pause short: from the hub's position (after "first") it and
        # the listener get everything at once, not 30 s later.
        sub = hub.subscribe(EventFilter(), None)
        await sub.open()
        try:
            last = await _xadd(redis, keys.events, "live")
            events = aiter(sub)
            got = [(await asyncio.wait_for(anext(events), 5)).cursor for _ in range(21)]
            assert got == [*written, last]
            assert heard == ["first", *(f"e{i}" for i in range(20)), "live"]
        finally:
            sub.close()
    finally:
        await hub.stop()
