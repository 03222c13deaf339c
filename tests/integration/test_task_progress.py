"""PROGRESS reports on the coordinator (progress.lua through the results consumer) against a real
redis-server: progress on the task, output in order and bounded, events, fencing, the progress
timeout and expiry with the task."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence

import grpc
import pytest

from hivewire.core.wire import RESULT_FIELD
from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.output import CHUNK_FIELD, END_FIELD
from hivewire_services.common.redis import Redis
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.test_delivery_deadlines import Delivery, dur
from tests.settings import StackSettings
from tests.waiting import eventually

STDOUT, STDERR, LOG = (
    stream_pb2.OUTPUT_STREAM_STDOUT,
    stream_pb2.OUTPUT_STREAM_STDERR,
    stream_pb2.OUTPUT_STREAM_LOG,
)
RUNNING = task_pb2.TASK_STATE_RUNNING
LIMIT = 2000


@pytest.fixture
async def d(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Delivery]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Delivery(redis, keys, dataclasses.replace(settings, task_output_max_bytes=LIMIT), channel)
    await channel.close()


async def report(
    redis: Redis,
    keys: Keys,
    env: stream_pb2.TaskEnvelope,
    lines: Sequence[tuple[int, str]] = (),
    fraction: float | None = None,
    message: str = "",
) -> None:
    """Append the PROGRESS report an agent would send for an envelope."""
    msg = stream_pb2.TaskResult(
        task_id=env.task_id,
        attempt=env.attempt,
        attempt_token=env.attempt_token,
        agent_id=env.agent_id,
        outcome=stream_pb2.TASK_OUTCOME_PROGRESS,
        output=[stream_pb2.OutputChunk(stream=s, text=t) for s, t in lines],  # type: ignore[misc]
    )
    if fraction is not None or message:
        msg.progress.message = message
        if fraction is not None:
            msg.progress.fraction = fraction
    await redis.xadd(keys.results, {RESULT_FIELD: msg.SerializeToString()})


async def stored_output(d: Delivery, task_id: str) -> list[stream_pb2.OutputChunk]:
    entries = await d.redis.xrange(d.keys.output(task_id))
    return [
        stream_pb2.OutputChunk.FromString(f[CHUNK_FIELD]) for _, f in entries if CHUNK_FIELD in f
    ]


async def assigned(d: Delivery, capability: str, **kw: object) -> stream_pb2.TaskEnvelope:
    agent = await add_agent(d.redis, d.keys, d.cache, [capability])
    await d.submit(capability, **kw)
    assert await d.scheduler.schedule_once() == 1
    [env] = await read_inbox(d.redis, d.keys, agent)
    return env


async def test_reports_store_progress_and_output_in_order(d: Delivery) -> None:
    env = await assigned(d, "build")
    await report(d.redis, d.keys, env, [(STDOUT, "compiling a"), (STDERR, "warning: x")], 0.25)
    await report(d.redis, d.keys, env, [(STDOUT, "compiling b")])
    await report(d.redis, d.keys, env, [(LOG, "INFO linking")], 0.75, "linking")
    await d.drain_results()
    task = await d.store.get(env.task_id)
    assert task.state == RUNNING  # a PROGRESS report starts an ASSIGNED attempt
    assert task.HasField("start_time")
    assert (task.progress.fraction, task.progress.message) == (0.75, "linking")
    assert task.progress.HasField("time")
    got = [(c.stream, c.text) for c in await stored_output(d, env.task_id)]
    assert got == [
        (STDOUT, "compiling a"),
        (STDERR, "warning: x"),
        (STDOUT, "compiling b"),
        (LOG, "INFO linking"),
    ]
    assert task.output_bytes == sum(
        len(c.SerializeToString()) for c in await stored_output(d, env.task_id)
    )
    events = [e for e in await d.events() if e.task_id == env.task_id]
    types = [e.type for e in events]
    assert types.count(event_pb2.EVENT_TYPE_TASK_STARTED) == 1
    progress = [e for e in events if e.type == event_pb2.EVENT_TYPE_TASK_PROGRESS]
    assert [(e.progress.fraction, e.message) for e in progress] == [(0.25, ""), (0.75, "linking")]
    output = [e for e in events if e.type == event_pb2.EVENT_TYPE_TASK_OUTPUT]
    assert [e.output_chunks for e in output] == [2, 1, 1]  # one event per report
    entry_ids = [i.decode() for i, _ in await d.redis.xrange(d.keys.output(env.task_id))]
    assert [e.output_cursor for e in output] == [entry_ids[1], entry_ids[2], entry_ids[3]]
    # The result comes after the reports; the followers' end entry closes the stream.
    await send_result(d.redis, d.keys, env, result=b"{}")
    await d.drain_results()
    [(_, last)] = await d.redis.xrevrange(d.keys.output(env.task_id), count=1)
    assert int(last[END_FIELD]) == task_pb2.TASK_STATE_SUCCEEDED
    assert (await d.store.get(env.task_id)).progress.fraction == 0.75  # kept once finished


async def test_output_past_the_limit_ends_with_one_marker(d: Delivery) -> None:
    env = await assigned(d, "spam")
    line = "x" * 90
    for i in range(10):  # 10 reports of 5 lines of ~100 bytes: 5,000 bytes for a 2,000 limit
        await report(d.redis, d.keys, env, [(STDOUT, f"{i}{j}{line}") for j in range(5)])
    await d.drain_results()
    chunks = await stored_output(d, env.task_id)
    *kept, marker = chunks
    assert marker.stream == LOG and "output truncated" in marker.text and str(LIMIT) in marker.text
    assert [c.text[:2] for c in kept] == [f"{i}{j}" for i in range(4) for j in range(5)][
        : len(kept)
    ]
    stored = sum(len(c.SerializeToString()) for c in kept)
    assert LIMIT - 110 < stored <= LIMIT
    task = await d.store.get(env.task_id)
    assert task.output_bytes == stored
    per_line = len(kept[0].SerializeToString())
    assert task.output_dropped_bytes == (50 - len(kept)) * per_line  # counting on past the cut
    assert sum(1 for c in chunks if "output truncated" in c.text) == 1


async def test_reports_of_a_superseded_attempt_are_ignored(d: Delivery) -> None:
    env = await assigned(d, "flaky", heartbeat_timeout=dur(0.2), max_attempts=3)
    await report(d.redis, d.keys, env, [(STDOUT, "first attempt")], 0.5)
    await d.drain_results()
    # The lease runs out: the attempt is lost and the task waits for attempt 2.
    assert await eventually(d.reclaimer.reap_once, within=10, message="the reclaim") == 1
    await report(d.redis, d.keys, env, [(STDOUT, "zombie")], 0.9)
    await report(d.redis, d.keys, env, [(STDOUT, "forged")], 0.1)
    await d.drain_results()
    task = await d.store.get(env.task_id)
    assert task.state == task_pb2.TASK_STATE_PENDING
    assert task.progress.fraction == 0.5
    assert [c.text for c in await stored_output(d, env.task_id)] == ["first attempt"]
    ignored = [e for e in await d.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert len(ignored) == 2 and all("late progress report" in e.message for e in ignored)
    await eventually(d.scheduler.promote_due, within=10, message="the retry promoted")
    assert await d.scheduler.schedule_once() == 1
    inbox = await read_inbox(d.redis, d.keys, env.agent_id)
    [env2] = inbox
    assert env2.attempt == 2 and not (await d.store.get(env.task_id)).HasField("progress")
    await report(d.redis, d.keys, env, [(STDOUT, "attempt 1 again")])  # superseded now
    await report(d.redis, d.keys, env2, [(STDOUT, "second attempt")], 0.2)
    await d.drain_results()
    task = await d.store.get(env.task_id)
    assert task.progress.fraction == pytest.approx(0.2)
    texts = [c.text for c in await stored_output(d, env.task_id)]
    assert texts == ["first attempt", "second attempt"]  # one output across attempts
    ignored = [e for e in await d.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert len(ignored) == 3 and "superseded attempt 1 (current 2)" in ignored[-1].message


async def test_reports_from_another_agent_with_the_right_token_are_ignored(d: Delivery) -> None:
    env = await assigned(d, "build")
    thief = await add_agent(d.redis, d.keys, d.cache, ["other"])
    forged = stream_pb2.TaskEnvelope()
    forged.CopyFrom(env)
    forged.agent_id = thief
    await report(d.redis, d.keys, forged, [(STDOUT, "forged")], 0.9)
    await d.drain_results()
    task = await d.store.get(env.task_id)
    assert task.state == task_pb2.TASK_STATE_ASSIGNED and not task.HasField("progress")
    assert await stored_output(d, env.task_id) == []
    [ignored] = [e for e in await d.events() if e.type == event_pb2.EVENT_TYPE_RESULT_IGNORED]
    assert ignored.agent_id == thief and f"assignee {env.agent_id}" in ignored.message
    assert (d.results.progress_counts["ignored"], d.results.progress_counts["foreign"]) == (1, 1)
    await report(d.redis, d.keys, env, [(STDOUT, "real")], 0.3)
    await d.drain_results()
    task = await d.store.get(env.task_id)
    assert task.state == RUNNING and task.progress.fraction == pytest.approx(0.3)
    assert [c.text for c in await stored_output(d, env.task_id)] == ["real"]
    assert d.results.progress_counts["applied"] == 1


async def test_progress_timeout_fails_a_silent_attempt_and_retries_it(d: Delivery) -> None:
    env = await assigned(d, "hang", progress_timeout=dur(0.5), max_attempts=2)
    assert env.progress_timeout.ToMilliseconds() == 500
    assert (await d.store.get(env.task_id)).progress_timeout.ToMilliseconds() == 500
    # Reports keep it alive well past the timeout...
    loop = asyncio.get_running_loop()
    until = loop.time() + 1.5
    while loop.time() < until:
        await report(d.redis, d.keys, env, [(STDOUT, "tick")])
        await d.drain_results()
        assert await d.reclaimer.reap_once() == 0
        await asyncio.sleep(0.1)  # the report cadence under test: well inside the 0.5 s timeout
    assert (await d.store.get(env.task_id)).state == RUNNING
    # ...then silence fails the attempt, which is retried.
    assert await eventually(d.reclaimer.reap_once, within=10, message="the progress timeout") == 1
    task = await d.store.get(env.task_id)
    assert (task.state, task.attempt) == (task_pb2.TASK_STATE_PENDING, 1)
    assert "progress_timeout" in task.error
    assert await d.redis.zscore(d.keys.progress_deadlines, env.task_id) is None


async def test_a_finished_attempt_leaves_no_progress_deadline(d: Delivery) -> None:
    env = await assigned(d, "quick", progress_timeout=dur(30))
    assert await d.redis.zscore(d.keys.progress_deadlines, env.task_id) is not None
    await send_result(d.redis, d.keys, env, result=b"{}")
    await d.drain_results()
    assert await d.redis.zscore(d.keys.progress_deadlines, env.task_id) is None


async def test_output_expires_with_its_task(d: Delivery) -> None:
    env = await assigned(d, "build")
    await report(d.redis, d.keys, env, [(STDOUT, "hello")])
    await send_result(d.redis, d.keys, env, result=b"{}")
    await d.drain_results()
    assert await d.redis.exists(d.keys.task(env.task_id), d.keys.output(env.task_id)) == 2
    assert await d.store.expire(cutoff_ms=0) == 0  # retention not yet due: both kept
    await eventually(lambda: d.store.expire(cutoff_ms=2**62), message="retention")
    assert await d.redis.exists(d.keys.task(env.task_id), d.keys.output(env.task_id)) == 0
