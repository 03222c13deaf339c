"""Delivery records, filters and takeover in Redis: the runner's domain modules, no gRPC."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from hivewire.core.clock import now_ms
from hivewire.v1 import event_pb2
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.hooks.deliveries import DeliveryStore, delivery_id
from hivewire_services.hooks.group import HooksGroup
from hivewire_services.hooks.matching import hooks_for
from hivewire_services.hooks.server import HooksServer
from tests.integration.hooks_helpers import (
    HOOK_TYPES,
    config_of,
    emit,
    events_of,
    hook_settings,
    hooks_pending,
)
from tests.settings import StackSettings
from tests.waiting import eventually

FAILED = event_pb2.EVENT_TYPE_TASK_FAILED
FILTERS = """
hooks:
  - {name: any-failure, on: task.failed, command: [x]}
  - {name: resize-failure, on: task.failed, filter: {capability: [resize, crop]}, command: [x]}
  - {name: eu-failure, on: task.failed, filter: {labels: {zone: eu}}, command: [x]}
  - {name: gpu-eu, on: task.failed, filter: {labels: {zone: eu, gpu: a100}}, command: [x]}
  - {name: analyze, on: [task.failed, workflow.failed], filter: {command: analyze-text},
     command: [x]}
  - {name: offline-resizer, on: agent.offline, filter: {capability: resize}, command: [x]}
  - {name: succeeded, on: task.succeeded, command: [x]}
"""


async def test_filters_match_capability_command_and_labels(redis: Redis, keys: Keys) -> None:
    config = config_of(FILTERS)
    task, agent, workflow = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    await redis.hset(keys.task(task), mapping={"labels": json.dumps({"zone": "eu"})})
    await redis.hset(
        keys.agent(agent),
        mapping={"labels": json.dumps({"gpu": "a100"}), "capabilities": "crop,resize"},
    )
    await redis.hset(keys.workflow(workflow), mapping={"command": "analyze-text"})

    async def names(**fields: object) -> list[str]:
        event = event_pb2.Event(**fields)  # type: ignore[arg-type]
        return await hooks_for(config, redis, keys, event)

    assert await names(type=FAILED, capability="echo") == ["any-failure"]
    assert await names(type=FAILED, capability="crop") == ["any-failure", "resize-failure"]
    # Task labels alone, then with the agent's labels added.
    assert await names(type=FAILED, capability="x", task_id=task) == ["any-failure", "eu-failure"]
    assert await names(type=FAILED, capability="x", task_id=task, agent_id=agent) == [
        "any-failure",
        "eu-failure",
        "gpu-eu",
    ]
    assert await names(type=FAILED, capability="x", workflow_id=workflow) == [
        "any-failure",
        "analyze",
    ]
    assert await names(type=event_pb2.EVENT_TYPE_WORKFLOW_FAILED, workflow_id=workflow) == [
        "analyze"
    ]
    assert (
        await names(type=event_pb2.EVENT_TYPE_WORKFLOW_FAILED, workflow_id=uuid.uuid4().hex) == []
    )
    # agent.offline has no capability of its own: the agent's capabilities count.
    assert await names(type=event_pb2.EVENT_TYPE_AGENT_OFFLINE, agent_id=agent) == [
        "offline-resizer"
    ]
    assert await names(type=event_pb2.EVENT_TYPE_AGENT_OFFLINE, agent_id=uuid.uuid4().hex) == []
    # Ids that could not be keys never reach Redis; the filter just does not match.
    assert await names(type=FAILED, capability="x", task_id="../../etc") == ["any-failure"]
    assert await names(type=event_pb2.EVENT_TYPE_TASK_RETRYING, capability="crop") == []


async def test_scheduling_is_idempotent_and_settling_is_fenced_by_attempt(
    redis: Redis, keys: Keys, settings: StackSettings
) -> None:
    store = DeliveryStore(redis, keys, settings)
    await HooksGroup(redis, keys, settings).check()
    first = await emit(redis, keys, FAILED, task_id=uuid.uuid4().hex)
    second = await emit(redis, keys, FAILED, task_id=uuid.uuid4().hex)
    reply = await redis.xreadgroup(HOOKS_GROUP, "c1", {keys.events: ">"}, count=10)
    [(_, entries)] = reply
    batch = [
        (entry_id, fields[b"event"], ["a", "b"] if i == 0 else [])
        for i, (entry_id, fields) in enumerate(entries)
    ]
    assert await store.schedule(batch) == (2, 1)  # second entry: no hook, acknowledged now
    assert await store.schedule(batch) == (0, 0)  # read again (taken over): nothing new
    assert await hooks_pending(redis, keys) == 1
    assert await store.backlog() == (2, 1)

    before = now_ms()
    claimed, next_due = await store.claim(10, lease_seconds=60)
    assert sorted(d.hook for d in claimed) == ["a", "b"]
    assert {d.delivery_id for d in claimed} == {delivery_id(first, "a"), delivery_id(first, "b")}
    assert all(d.attempt == 1 and d.entry_id == first for d in claimed)
    assert next_due is not None and next_due >= before + 60_000  # the leases run out next
    assert await store.claim(10, lease_seconds=60) == ([], next_due)  # leased, not due
    a, b = sorted(claimed, key=lambda d: d.hook)

    await store.release([a])  # a stopping runner hands `a` back, attempt not counted
    [again], _ = await store.claim(10, lease_seconds=60)
    assert (again.hook, again.attempt) == ("a", 1)

    assert await store.settle(again, "retry", "a: exit status 1", next_ms=0)
    [retry], _ = await store.claim(10, lease_seconds=60)
    assert retry.attempt == 2
    assert not await store.settle(again, "ok", "a: stale")  # attempt 1 is over
    assert await store.settle(retry, "ok", "a: exit 0")
    assert await hooks_pending(redis, keys) == 1  # `b` has not settled: entry not acked yet
    assert await store.settle(b, "fail", "b: exit status 2")
    assert await hooks_pending(redis, keys) == 0
    assert await store.backlog() == (0, 0)
    outcomes = await events_of(redis, keys, *HOOK_TYPES)
    assert [(e.type, e.message, e.attempt) for e in outcomes] == [
        (event_pb2.EVENT_TYPE_HOOK_SUCCEEDED, "a: exit 0", 2),
        (event_pb2.EVENT_TYPE_HOOK_FAILED, "b: exit status 2", 1),
    ]
    assert second not in {d.entry_id for d in claimed}


async def test_entries_a_dead_runner_read_are_taken_over(
    redis: Redis, keys: Keys, settings: StackSettings, tmp_path: Path
) -> None:
    """A runner that read entries and died before scheduling them: XAUTOCLAIM finds them."""
    out = tmp_path / "out"
    config = config_of(
        "hooks: [{name: note, on: task.failed,"
        f" command: [sh, -c, 'echo $HIVEWIRE_TASK_ID >> {out}']}}]"
    )
    hsettings = hook_settings(settings, hooks_claim_idle=0.3)
    await HooksGroup(redis, keys, hsettings).check()
    tasks = [uuid.uuid4().hex for _ in range(5)]
    for t in tasks:
        await emit(redis, keys, FAILED, task_id=t, capability="x")
    read = await redis.xreadgroup(HOOKS_GROUP, "dead-runner", {keys.events: ">"}, count=10)
    assert len(read[0][1]) == 5

    async def claimable() -> bool:  # idle past hooks_claim_idle: the next runner takes them over
        pending = await redis.xpending_range(keys.events, HOOKS_GROUP, "-", "+", 10)
        return all(p["time_since_delivered"] > 300 for p in pending)

    await eventually(claimable, message="the dead runner's entries idle")
    async with HooksServer(hsettings.hooks(), config) as runner:
        await eventually(lambda: _count(redis, keys, 5))
        await eventually(lambda: _acked(redis, keys))
        assert runner.intake.counts["scheduled"] == 5
    assert sorted(out.read_text().split()) == sorted(tasks)


async def _count(redis: Redis, keys: Keys, n: int) -> bool:
    return len(await events_of(redis, keys, *HOOK_TYPES)) >= n


async def _acked(redis: Redis, keys: Keys) -> bool:
    return await hooks_pending(redis, keys) == 0


async def test_backlog_is_bounded_and_drains(
    redis: Redis, keys: Keys, settings: StackSettings, tmp_path: Path
) -> None:
    """Hooks stuck at a gate: the runner reads at most 3 events ahead, the rest wait unread."""
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    script = f"echo $HIVEWIRE_TASK_ID >> {runs}; while [ ! -f {gate} ]; do sleep 0.05; done"
    config = config_of(
        f"hooks: [{{name: gated, on: task.failed, command: {{argv: [sh, -c, '{script}'], "
        "timeout: 60}}]"
    )
    hsettings = hook_settings(settings, hooks_max_backlog=3, hooks_concurrency=1)
    tasks = [uuid.uuid4().hex for _ in range(10)]
    async with HooksServer(hsettings.hooks(), config) as runner:
        for t in tasks:
            await emit(redis, keys, FAILED, task_id=t, capability="x")
        await eventually(lambda: _backlog_is(runner, 3))
        for _ in range(20):  # it stays there while the hook is stuck
            assert (await runner.store.backlog())[1] <= 3
            assert await hooks_pending(redis, keys) <= 3  # read and not acknowledged
            await asyncio.sleep(0.05)  # sampling the bound over a second: the thing under test
        gate.touch()
        await eventually(lambda: _count(redis, keys, 10))
        await eventually(lambda: _acked(redis, keys))
    assert sorted(runs.read_text().split()) == sorted(tasks)


async def _backlog_is(runner: HooksServer, n: int) -> bool:
    return (await runner.store.backlog())[1] == n
