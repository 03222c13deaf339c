"""Events the stream's cap drops before the hooks group read them are counted, never silent."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.samples import Sample

from hivewire.core.clock import now_ms
from hivewire.core.hooks_file import HooksConfig
from hivewire.v1 import event_pb2
from hivewire_services.common import lua
from hivewire_services.common.events import EVENT_FIELD, make_event
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_metrics import RedisStateCollector
from hivewire_services.hooks.deliveries import DeliveryStore
from hivewire_services.hooks.group import SCAN_LIMIT, HooksGroup
from hivewire_services.hooks.server import HooksServer
from tests.integration.hooks_helpers import config_of, emit, events_of, hook_settings
from tests.settings import StackSettings
from tests.waiting import eventually

FAILED = event_pb2.EVENT_TYPE_TASK_FAILED


@pytest.fixture(autouse=True)
async def stream_counters(redis: Redis) -> None:
    """Redis keeps the counters these tests rely on since 7.0 (older: the runner just warns)."""
    version = str((await redis.info("server"))["redis_version"])
    if int(version.split(".")[0]) < 7:
        pytest.skip(f"stream counters need Redis 7.0 or later, not {version}")


def noting_to(out: Path) -> HooksConfig:
    """One command hook on task.failed that appends the task id to `out`."""
    return config_of(
        "hooks: [{name: note, on: task.failed,"
        f" command: [sh, -c, 'echo $HIVEWIRE_TASK_ID >> {out}']}}]"
    )


async def lost_events(redis: Redis, keys: Keys) -> list[event_pb2.Event]:
    events = await events_of(redis, keys, event_pb2.EVENT_TYPE_HOOK_FAILED)
    return [e for e in events if e.message.startswith("events lost: ")]


async def last_report(redis: Redis, keys: Keys) -> str:
    """The start of the last loss report: `events lost: <n>`."""
    return (await lost_events(redis, keys))[-1].message.split(" events were")[0]


async def emit_ids(redis: Redis, keys: Keys, n: int) -> list[bytes]:
    event = make_event(FAILED, capability="x").SerializeToString()
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(n):
            pipe.xadd(keys.events, {EVENT_FIELD: event})
        return list(await pipe.execute())


async def read(redis: Redis, keys: Keys, n: int) -> None:
    await redis.xreadgroup(HOOKS_GROUP, "reader", {keys.events: ">"}, count=n)


def lost_metric(settings: StackSettings, keys: Keys) -> float:
    collector = RedisStateCollector(settings.redis_url, keys, ("streams",))
    try:
        samples: list[Sample] = [s for m in collector.collect() for s in m.samples]
    finally:
        collector.close()
    [value] = [s.value for s in samples if s.name == "hivewire_hook_events_lost_total"]
    return value


async def test_group_counts_entries_trimmed_before_it_read_them_once(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    group = HooksGroup(redis, keys, settings)
    assert await group.check() == 0  # creates the group at the end, its read counter exact
    ids = await emit_ids(redis, keys, 20)
    await read(redis, keys, 5)
    assert await group.check() == 0  # 15 unread, all still there

    # Trimmed while the group is behind: its position is before the first entry.
    await redis.xtrim(keys.events, minid=ids[10], approximate=False)  # ids[5:10] go unread
    assert await group.check() == 5
    assert await last_report(redis, keys) == "events lost: 5"
    assert await group.check() == 0  # counted once

    # Trimmed, then read past the gap before anyone looked: still counted.
    await read(redis, keys, 3)  # ids[10:13]
    await redis.xtrim(keys.events, minid=ids[15], approximate=False)  # ids[13:15] go unread
    await read(redis, keys, 2)  # ids[15:17]: the group is now inside the stream again
    assert await group.check() == 2
    assert await last_report(redis, keys) == "events lost: 2"
    assert await group.check() == 0

    # More unread entries than one check counts: counted once the group has caught up enough.
    more = await emit_ids(redis, keys, SCAN_LIMIT + 100)
    await read(redis, keys, 3 + 2 + 2)  # ids[17:20], the two loss events, more[0:2]
    await redis.xtrim(keys.events, minid=more[5], approximate=False)  # more[2:5] go unread
    await read(redis, keys, 1)
    assert await group.check() == 0  # too far behind to count now
    await read(redis, keys, 200)
    assert await group.check() == 3
    assert await last_report(redis, keys) == "events lost: 3"
    assert await group.lost_total() == 10 == lost_metric(settings, keys)


async def test_a_group_without_a_read_counter_gets_one_then_losses_are_counted(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    """A group Redis keeps no read counter for (created by an older runner): set at a check."""
    a, _, _ = await emit_ids(redis, keys, 3)
    await redis.xgroup_create(keys.events, HOOKS_GROUP, id=a)  # no ENTRIESREAD
    await read(redis, keys, 1)  # the second entry, neither first nor last: Redis cannot tell
    [info] = await redis.xinfo_groups(keys.events)
    assert info["entries-read"] is None
    group = HooksGroup(redis, keys, settings)
    assert await group.check() == 0
    [info] = await redis.xinfo_groups(keys.events)
    assert info["entries-read"] == 2
    ids = await emit_ids(redis, keys, 4)
    # Gone unread: the third entry of the three, then ids[0] and ids[1].
    await redis.xtrim(keys.events, minid=ids[2], approximate=False)
    assert await group.check() == 3
    assert await group.lost_total() == 3


async def test_events_trimmed_while_the_runner_is_stopped_are_counted_the_rest_delivered(
    redis: Redis, keys: Keys, settings: StackSettings, tmp_path: Path
) -> None:
    """The real cap: emit_event's XADD MAXLEN ~ 10 x maxlen, with a tiny maxlen."""
    out = tmp_path / "ran"
    config = noting_to(out)
    hsettings = hook_settings(settings)
    first = uuid.uuid4().hex
    async with HooksServer(hsettings.hooks(), config) as runner:
        await emit(redis, keys, FAILED, task_id=first, capability="x")
        await eventually(lambda: ran(out) == [first])
        await eventually(lambda: caught_up(redis, keys))  # its own hook.succeeded read too
        assert runner.intake.counts["lost"] == 0

    # While no runner runs, 300 events come through the Lua prelude with its hard cap at 50.
    body = tmp_path / "emit.lua"
    body.write_text(
        "emit_event(KEYS[1], ARGV[1], {type=EVENT_TYPE_TASK_FAILED, ms=ARGV[2], task_id=ARGV[3],"
        " capability='x'})"
    )
    emit_capped = lua.register(redis, body)
    tasks = [uuid.uuid4().hex for _ in range(300)]
    for task in tasks:
        await emit_capped(keys=[keys.events], args=[5, now_ms(), task])
    left = {e.task_id for e in await events_of(redis, keys, FAILED)} & set(tasks)
    lost = len(tasks) - len(left)
    assert 100 <= lost < 300  # whole stream nodes of 100 entries went

    async with HooksServer(hsettings.hooks(), config) as runner:
        await eventually(lambda: len(ran(out)) == 1 + len(left))
        assert runner.intake.counts["lost"] == lost
        [report] = await lost_events(redis, keys)
        assert report.message.startswith(f"events lost: {lost} events were trimmed")
        assert (report.task_id, report.agent_id, report.attempt) == ("", "", 0)
    # Every event either ran its hook or is counted lost; a restart counts nothing again.
    assert sorted(ran(out)) == sorted([first, *left])
    async with HooksServer(hsettings.hooks(), config) as runner:
        assert runner.intake.counts["lost"] == 0
    assert lost_metric(settings, keys) == lost


async def test_pending_entries_trimmed_before_their_hooks_were_scheduled_are_counted(
    redis: Redis, keys: Keys, settings: StackSettings, tmp_path: Path
) -> None:
    """A runner read 5 events and died: it had scheduled 1; all 5 were trimmed before takeover."""
    out = tmp_path / "ran"
    config = noting_to(out)
    hsettings = hook_settings(settings, hooks_claim_idle=0.3)
    await HooksGroup(redis, keys, hsettings).check()
    tasks = [uuid.uuid4().hex for _ in range(6)]
    for task in tasks:
        await emit(redis, keys, FAILED, task_id=task, capability="x")
    [(_, entries)] = await redis.xreadgroup(HOOKS_GROUP, "dead-runner", {keys.events: ">"}, count=5)
    entry_id, fields = entries[0]
    store = DeliveryStore(redis, keys, hsettings)
    assert await store.schedule([(entry_id, fields[EVENT_FIELD], ["note"])]) == (1, 0)
    unread = (await redis.xrange(keys.events, count=6))[-1][0]
    await redis.xtrim(keys.events, minid=unread, approximate=False)  # the 5 read entries are gone

    async with HooksServer(hsettings.hooks(), config) as runner:
        # The scheduled one keeps its event in its delivery; the unread one is read as usual.
        await eventually(lambda: sorted(ran(out)) == sorted([tasks[0], tasks[5]]), within=30)
        await eventually(lambda: runner.intake.counts["lost"] == 4)
        [report] = await eventually(lambda: lost_events(redis, keys))
    assert report.message.startswith("events lost: 4 events read by a hooks runner that stopped")
    assert await HooksGroup(redis, keys, hsettings).lost_total() == 4


def ran(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def caught_up(redis: Redis, keys: Keys) -> bool:
    info: dict[str, Any] = await redis.xinfo_stream(keys.events)
    [group] = await redis.xinfo_groups(keys.events)
    return bool(group["last-delivered-id"] == info["last-generated-id"] and not group["pending"])
