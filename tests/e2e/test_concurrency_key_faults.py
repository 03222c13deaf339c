"""A concurrency key under faults: limit 1 over three agents and two coordinators, with an
agent killed -9 mid-task. Registry, coordinators and agents are real processes."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.redis import Redis
from tests.e2e.delivery_stack import Driver, Processes
from tests.settings import StackSettings
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

RUNNING = task_pb2.TASK_STATE_RUNNING
SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
# Events that end an attempt (and so its hold on the key).
ENDS = {
    event_pb2.EVENT_TYPE_TASK_SUCCEEDED,
    event_pb2.EVENT_TYPE_TASK_RECLAIMED,
    event_pb2.EVENT_TYPE_TASK_RETRYING,
    event_pb2.EVENT_TYPE_TASK_FAILED,
}


def ms(ts: object) -> int:
    return int(ts.ToMilliseconds())  # type: ignore[attr-defined]


def assert_disjoint(intervals: list[tuple[int, int, str]]) -> None:
    ordered = sorted(intervals)
    for (_, end, a), (start, _, b) in itertools.pairwise(ordered):
        assert end <= start, f"{a} (until {end}) overlaps {b} (from {start})"


async def test_limit_one_holds_over_agents_coordinators_and_a_kill(
    procs: Processes, driver: Driver, redis: Redis, settings: StackSettings
) -> None:
    second = Driver(redis, settings, await procs.start_coordinator("coordinator-2"))
    for name in ("a", "b", "c"):
        procs.start_agent(name, concurrency=2)
    agents = {name: await driver.agent_id(name) for name in ("a", "b", "c")}
    try:
        # One long task: its agent is killed while it runs (the others are short).
        def payload(i: int) -> bytes:
            return json.dumps({"secs": 1.5 if i == 7 else 0.1}).encode()

        tasks = await asyncio.gather(
            *(
                (driver if i % 2 else second).submit(
                    "sleep", payload(i), concurrency_key="repo:api", concurrency_limit=1
                )
                for i in range(20)
            )
        )

        async def long_one_running() -> task_pb2.Task | None:
            now = await driver.store.get(tasks[7].task_id)
            return now if now.state == RUNNING else None

        victim = await eventually(long_one_running, within=60, message="the long task running")
        by_id = {agent_id: name for name, agent_id in agents.items()}
        procs.kill(by_id[victim.agent_id])
        finished = [await driver.wait_for(t.task_id, lambda t: t.state == SUCCEEDED) for t in tasks]
        # The final attempts, from the tasks' own times, never overlap ...
        assert_disjoint([(ms(t.start_time), ms(t.end_time), t.task_id) for t in finished])
        # ... nor do any attempts' holds on the key (the killed one included), from the events:
        # from delivery (TASK_ASSIGNED) to the event that ended the attempt.
        holds: dict[tuple[str, int], list[int]] = {}
        for e in await driver.events():
            if e.task_id and e.type == event_pb2.EVENT_TYPE_TASK_ASSIGNED:
                holds[(e.task_id, e.attempt)] = [ms(e.time), -1]
            elif e.type in ENDS and (e.task_id, e.attempt) in holds:
                span = holds[(e.task_id, e.attempt)]
                if span[1] < 0:
                    span[1] = ms(e.time)
        assert all(end >= 0 for _, end in holds.values()), holds
        assert_disjoint([(s, end, f"{tid}#{n}") for (tid, n), (s, end) in holds.items()])
        # The killed attempt counts (it held the key until reclaimed), and was retried.
        story = [
            (event_pb2.EventType.Name(e.type), e.attempt, e.agent_id[:6], e.message)
            for e in await driver.events(victim.task_id)
        ]
        assert (victim.task_id, victim.attempt) in holds, (victim, story)
        assert (victim.task_id, victim.attempt + 1) in holds, story
        assert await redis.scard(driver.keys.conc_holders("repo:api")) == 0
        assert await redis.zcard(driver.keys.conc_wait("repo:api")) == 0
    finally:
        await second.close()
