"""Events encoded by the Lua prelude parse as hivewire.v1.Event in Python."""

from __future__ import annotations

from pathlib import Path

from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from hivewire_services.common import lua
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis


async def test_lua_event_round_trips(redis: Redis, keys: Keys, tmp_path: Path) -> None:
    body = tmp_path / "emit.lua"
    body.write_text(
        "emit_event(KEYS[1], 100, {type=EVENT_TYPE_TASK_SUCCEEDED, ms=tonumber(ARGV[1]),"
        " task_id=ARGV[2], agent_id='', capability='echo', state=TASK_STATE_SUCCEEDED,"
        " attempt=3, message=ARGV[3]})"
    )
    script = lua.register(redis, body)
    ms = 1_764_000_000_123
    await script(keys=[keys.events], args=[ms, "ab" * 16, "héllo \x00 bytes"])
    [(entry_id, fields)] = await redis.xrange(keys.events)
    event = decode_entry(entry_id, fields)
    assert event.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED
    assert event.task_state == task_pb2.TASK_STATE_SUCCEEDED
    assert event.time.ToMilliseconds() == ms
    assert event.task_id == "ab" * 16
    assert event.capability == "echo"
    assert event.attempt == 3
    assert event.agent_id == ""
    assert event.message == "héllo \x00 bytes"
    assert event.cursor == entry_id.decode()


async def test_lua_varints_at_every_length_round_trip(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """Times, counts and lengths of 1 to 6 varint bytes (the encoder unrolls them)."""
    body = tmp_path / "emit.lua"
    body.write_text(
        "emit_event(KEYS[1], 100, {type=EVENT_TYPE_TASK_STARTED, ms=tonumber(ARGV[1]),"
        " task_id='t', attempt=tonumber(ARGV[2]), message=ARGV[3]})"
    )
    script = lua.register(redis, body)
    seconds = [
        1,
        127,
        128,
        16_383,
        16_384,
        2**21,
        2**28 - 1,
        2**28,
        2**35 - 1,
        2**35,
        253_402_300_799,
    ]
    cases = [
        (s * 1000 + ms, attempt, "m" * length)
        for s, ms, attempt, length in zip(
            seconds,
            [0, 1, 999, 128, 500, 16, 999, 0, 7, 999, 3],
            [1, 127, 128, 16_383, 16_384, 2**21 - 1, 2**21, 2**28, 2**31 - 1, 2, 3],
            [0, 1, 127, 128, 200, 16_383, 16_384, 20_000, 5, 6, 7],
            strict=True,
        )
    ]
    for ms, attempt, message in cases:
        await script(keys=[keys.events], args=[ms, attempt, message])
    entries = await redis.xrange(keys.events)
    got = [decode_entry(entry_id, fields) for entry_id, fields in entries]
    assert [(e.time.ToMilliseconds(), e.attempt, e.message) for e in got] == cases


async def test_every_field_a_lua_event_carries_round_trips(
    redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    progress = stream_pb2.TaskProgress(fraction=0.5, message="half")
    body = tmp_path / "emit.lua"
    body.write_text(
        "emit_event(KEYS[1], 100, {type=EVENT_TYPE_TASK_PROGRESS, ms=tonumber(ARGV[1]),"
        " task_id=ARGV[2], workflow_id='wf-1', agent_id='agent-7', capability='summarize',"
        " state=TASK_STATE_RUNNING, attempt=2, message='m', step_id='step-3', tenant='acme',"
        " progress=ARGV[3], output_chunks=130, output_cursor='9-1', schedule='nightly',"
        " tick_ms=tonumber(ARGV[1]) + 5, ckey='repo:1', rate_limit='openai'})"
    )
    script = lua.register(redis, body)
    ms = 1_764_000_000_000  # whole seconds: no nanos
    await script(keys=[keys.events], args=[ms, "cd" * 16, progress.SerializeToString()])
    [(entry_id, fields)] = await redis.xrange(keys.events)
    event = decode_entry(entry_id, fields)
    expected = event_pb2.Event(
        cursor=entry_id.decode(),
        type=event_pb2.EVENT_TYPE_TASK_PROGRESS,
        task_id="cd" * 16,
        workflow_id="wf-1",
        agent_id="agent-7",
        capability="summarize",
        task_state=task_pb2.TASK_STATE_RUNNING,
        attempt=2,
        message="m",
        step_id="step-3",
        tenant="acme",
        progress=progress,
        output_chunks=130,
        output_cursor="9-1",
        schedule="nightly",
        concurrency_key="repo:1",
        rate_limit="openai",
    )
    expected.time.FromMilliseconds(ms)
    expected.schedule_tick_time.FromMilliseconds(ms + 5)
    assert event == expected
