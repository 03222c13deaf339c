"""The metrics feed counts each event once, even across a crashed consumer, and the scrape-time
collector reports the counters, queues and streams from Redis."""

from __future__ import annotations

from typing import Any, cast

from hivewire.v1 import agent_pb2, event_pb2
from hivewire_services.common.events import EVENT_FIELD, make_event
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_metrics import RedisStateCollector
from hivewire_services.common.streams import Entry
from hivewire_services.coordinator.tasks.metrics_feed import METRICS_GROUP, MetricsFeed
from tests.settings import StackSettings


async def _emit(redis: Redis, keys: Keys, *events: tuple[int, str]) -> None:
    for event_type, capability in events:
        event = make_event(event_type, task_id="c" * 32, capability=capability)
        await redis.xadd(keys.events, {EVENT_FIELD: event.SerializeToString()})


async def _read(redis: Redis, keys: Keys, consumer: str) -> list[Entry]:
    reply = await redis.xreadgroup(METRICS_GROUP, consumer, {keys.events: ">"}, count=100)
    return [e for _, entries in cast(list[tuple[bytes, list[Entry]]], reply) for e in entries]


def _samples(collector: RedisStateCollector) -> dict[tuple[str, tuple[Any, ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in collector.collect()
        for s in family.samples
    }


async def test_each_event_is_counted_once(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    feed_a = MetricsFeed(redis, keys, "a")
    feed_b = MetricsFeed(redis, keys, "b")
    await feed_a.ensure_group()
    await feed_b.ensure_group()  # BUSYGROUP is fine
    await _emit(
        redis,
        keys,
        (event_pb2.EVENT_TYPE_TASK_SUBMITTED, "echo"),
        (event_pb2.EVENT_TYPE_TASK_SUBMITTED, "echo"),
        (event_pb2.EVENT_TYPE_TASK_SUCCEEDED, "echo"),
        (event_pb2.EVENT_TYPE_TASK_RETRYING, "fail"),
        (event_pb2.EVENT_TYPE_TASK_DEAD_LETTERED, "fail"),
        (event_pb2.EVENT_TYPE_AGENT_REGISTERED, ""),
    )
    stale = await _read(redis, keys, "a")  # consumer "a" dies before counting
    assert len(stale) == 6
    claimed = await redis.xautoclaim(keys.events, METRICS_GROUP, "b", 0, count=100)
    await feed_b.handle(cast(list[Entry], claimed[1]))
    await feed_a.handle(stale)  # the late original: already acknowledged, not counted again
    await feed_b.handle(cast(list[Entry], claimed[1]))  # a replay: no effect
    raw = cast(dict[bytes, bytes], await redis.hgetall(keys.task_counters))
    assert {k.decode(): int(v) for k, v in raw.items()} == {
        "submitted|echo": 2,
        "succeeded|echo": 1,
        "retried|fail": 1,
        "dead_lettered|fail": 1,
    }
    groups = await redis.xinfo_groups(keys.events)
    assert [g["pending"] for g in groups if g["name"] == METRICS_GROUP.encode()] == [0]

    collector = RedisStateCollector(settings.redis_url, keys, ("tasks", "queues", "streams"))
    try:
        got = _samples(collector)
    finally:
        collector.close()
    assert got[("hivewire_redis_up", ())] == 1
    assert got[("hivewire_tasks_submitted_total", (("capability", "echo"),))] == 2
    assert got[("hivewire_tasks_succeeded_total", (("capability", "echo"),))] == 1
    assert got[("hivewire_tasks_retried_total", (("capability", "fail"),))] == 1
    assert got[("hivewire_tasks_dead_lettered_total", (("capability", "fail"),))] == 1
    assert ("hivewire_tasks_failed_total", (("capability", "fail"),)) not in got
    assert got[("hivewire_queue_depth", (("capability", "echo"),))] == 0
    assert got[("hivewire_stream_length", (("stream", "events"),))] == 6
    assert got[("hivewire_stream_pending", (("group", METRICS_GROUP), ("stream", "events")))] == 0
    assert got[("hivewire_stream_lag", (("group", METRICS_GROUP), ("stream", "events")))] == 0


async def test_queue_depth_counts_pending_tasks(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    await redis.zadd(keys.pending("resize"), {"a" * 32: 1, "b" * 32: 2})
    await redis.sadd(keys.pending_capabilities, "resize")
    await redis.zadd(keys.due, {"c" * 32: 1})
    collector = RedisStateCollector(settings.redis_url, keys, ("queues",))
    try:
        got = _samples(collector)
    finally:
        collector.close()
    assert got[("hivewire_queue_depth", (("capability", "resize"),))] == 2
    assert got[("hivewire_retry_waiting", ())] == 1


def test_redis_outage_is_reported_not_raised(keys: Keys) -> None:
    collector = RedisStateCollector("redis://127.0.0.1:1/0", keys, ("tasks",))
    try:
        got = _samples(collector)
    finally:
        collector.close()
    assert got == {("hivewire_redis_up", ()): 0}


async def test_a_scrape_is_one_round_trip_once_the_names_are_known(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    await redis.zadd(keys.pending("resize"), {"a" * 32: 1})
    await redis.sadd(keys.pending_capabilities, "resize")
    await redis.zadd(keys.live_agents, {"b" * 32: 1})
    await redis.hset(keys.agent("b" * 32), "state", agent_pb2.AGENT_STATE_ONLINE)
    sections = ("tasks", "queues", "streams", "agents")
    collector = RedisStateCollector(settings.redis_url, keys, sections)
    sync = collector._redis
    calls = {"pipelines": 0, "commands": 0}
    make_pipeline, execute = sync.pipeline, sync.execute_command

    def counted_pipeline(*args: Any, **kw: Any) -> Any:
        calls["pipelines"] += 1
        return make_pipeline(*args, **kw)

    def counted_command(*args: Any, **kw: Any) -> Any:
        calls["commands"] += 1
        return execute(*args, **kw)

    sync.pipeline, sync.execute_command = counted_pipeline, counted_command  # type: ignore[method-assign]
    try:
        first = _samples(collector)  # learns the capability and the agent
        calls.update(pipelines=0, commands=0)
        again = _samples(collector)
        assert calls == {"pipelines": 1, "commands": 0}
        await redis.zadd(keys.pending("thumbs"), {"c" * 32: 1})
        await redis.sadd(keys.pending_capabilities, "thumbs")
        calls.update(pipelines=0, commands=0)
        later = _samples(collector)  # a new name: one more round trip, for it alone
    finally:
        collector.close()
    assert first == again
    assert first[("hivewire_queue_depth", (("capability", "resize"),))] == 1
    assert first[("hivewire_agents", (("state", "ONLINE"),))] == 1
    assert later[("hivewire_queue_depth", (("capability", "thumbs"),))] == 1
    assert calls == {"pipelines": 2, "commands": 0}
