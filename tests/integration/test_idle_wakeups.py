"""Timed loops sleep until the next due time: the reclaimer and the scheduler do their work on
time with safety passes five minutes apart, and an idle stack sends Redis few commands."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import grpc
import pytest

from hivewire.core.background import cancel_and_wait
from hivewire.v1 import stream_pb2, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.reclaim import Reclaimer
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.stack import running_stack
from tests.integration.test_coordinator_flow import Parts
from tests.integration.test_delivery_deadlines import dur
from tests.settings import StackSettings
from tests.waiting import eventually

# Far longer than any test: a loop that works here was woken by a due time or by news.
NEVER = 300.0


@pytest.fixture
def sleepy(settings: StackSettings) -> StackSettings:
    return dataclasses.replace(
        settings, reclaim_interval=NEVER, scheduler_interval=NEVER, retry_initial_backoff=1.0
    )


@pytest.fixture
async def loops() -> AsyncIterator[list[asyncio.Task[None]]]:
    running: list[asyncio.Task[None]] = []
    yield running
    # As the services stop their loops: redis-py can swallow a cancel that lands inside a
    # command, and a loop that lost it sleeps on to its next due time (a teardown hung 120 s).
    await cancel_and_wait(running)


@pytest.fixture
async def parts(redis: Redis, keys: Keys, sleepy: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, sleepy, channel)
    await channel.close()


def start(loops: list[asyncio.Task[None]], loop: Coroutine[Any, Any, None]) -> None:
    loops.append(asyncio.create_task(loop))


async def reclaimed(parts: Parts, task_id: str) -> bool:
    got = await parts.store.get(task_id)
    return got.attempt == 1 and "heartbeat timeout" in got.error


async def test_an_announced_lease_wakes_the_sleeping_reclaimer_when_it_runs_out(
    parts: Parts, loops: list[asyncio.Task[None]]
) -> None:
    reclaimer = Reclaimer(parts.redis, parts.keys, parts.settings, "r", lambda: None)
    parts.scheduler._on_deadline = reclaimer.due_at  # as the coordinator wires them
    start(loops, reclaimer.run())
    await eventually(lambda: reclaimer.alarm.wakeups == 1, message="the first pass")
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["sleep"])
    [task] = await parts.submit("sleep", heartbeat_timeout=dur(1.0))
    assert await parts.scheduler.schedule_once() == 1  # announces the lease: due in 1 s
    [_] = await read_inbox(parts.redis, parts.keys, agent)  # and the agent never heartbeats
    await eventually(lambda: reclaimed(parts, task.task_id), within=15, message="the reclaim")
    # Woken for the lease, not by polling: the start, the lease, at most a recheck.
    assert reclaimer.alarm.wakeups <= 3


async def test_the_reclaimer_sleeps_until_the_earliest_lease_it_finds_in_redis(
    parts: Parts, loops: list[asyncio.Task[None]]
) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["sleep"])
    [task] = await parts.submit("sleep", heartbeat_timeout=dur(1.5))
    assert await parts.scheduler.schedule_once() == 1  # not announced: "another coordinator"
    [_] = await read_inbox(parts.redis, parts.keys, agent)
    reclaimer = Reclaimer(parts.redis, parts.keys, parts.settings, "r", lambda: None)
    start(loops, reclaimer.run())
    await eventually(lambda: reclaimer.alarm.wakeups == 1, message="the first pass")
    assert (await parts.store.get(task.task_id)).attempt == 1  # not due yet when it looked
    await eventually(lambda: reclaimed(parts, task.task_id), within=15, message="the reclaim")
    assert reclaimer.alarm.wakeups <= 3


async def test_the_sleeping_scheduler_runs_when_the_retry_comes_due(
    parts: Parts, loops: list[asyncio.Task[None]]
) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["echo"])
    [task] = await parts.submit("echo", payload=b'"hi"')
    start(loops, parts.scheduler.run())  # its first pass assigns the task
    [env] = await eventually(lambda: read_inbox(parts.redis, parts.keys, agent))
    await send_result(parts.redis, parts.keys, env, outcome=stream_pb2.TASK_OUTCOME_FAILED)
    await parts.drain_results()  # a retry after about a second's backoff
    passes = parts.scheduler.alarm.wakeups
    parts.scheduler.wake()  # as the results consumer does once it applied a batch
    [again] = await eventually(
        lambda: read_inbox(parts.redis, parts.keys, agent), within=15, message="the retry"
    )
    assert (again.task_id, again.attempt) == (task.task_id, 2)
    # The wake, the retry's due time, at most a recheck: no polling in between.
    assert parts.scheduler.alarm.wakeups - passes <= 3
    assert (await parts.store.get(task.task_id)).state == task_pb2.TASK_STATE_ASSIGNED


async def test_an_idle_stack_sends_redis_few_commands(redis: Redis, sleepy: StackSettings) -> None:
    # A 30 s agent lease: the agent heartbeats every 10 s, as by default (15 s, every 5 s).
    async with running_stack(sleepy, lease_seconds=30.0) as stack:
        await stack.agent("idle", {"echo": lambda ctx: ctx.payload})
        await stack.wait_health(1)  # SERVING
        before, started = await _calls(redis), time.monotonic()
        await asyncio.sleep(2.0)  # the idle window under test
        used, elapsed = await _calls(redis) - before - 1, time.monotonic() - started
    # By design about 5 a second: a PING a second from each service's Redis probe, a heartbeat
    # (about 5 commands) every 10 s, a blocking read or claim per reader every 10-30 s. Polling
    # loops sent about 40 a second.
    assert used <= 12 * elapsed, f"{used} Redis commands in {elapsed:.1f}s of idling"


async def _calls(redis: Redis) -> int:
    stats: dict[str, dict[str, Any]] = await redis.info("commandstats")
    return sum(int(row["calls"]) for row in stats.values())
