"""The workflow engine against a real Redis: replays, duplicates and races launch nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from hivewire.core.workflow_file import workflow_request
from hivewire.v1 import workflow_pb2
from hivewire_services.common.errors import NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.engine import WORKFLOW_GROUP, WorkflowEngine
from tests.integration.coordinator_helpers import add_agent, all_task_ids, read_inbox, send_result
from tests.settings import StackSettings


class Parts:
    def __init__(self, redis: Redis, keys: Keys, settings: StackSettings, channel: Any) -> None:
        self.redis, self.keys, self.settings = redis, keys, settings
        self.cache = AgentCache(channel, on_change=lambda: None)
        self.tasks = TaskStore(redis, keys, settings)
        self.scheduler = Scheduler(redis, keys, settings, self.cache)
        self.results = ResultsConsumer(redis, keys, settings, "test", on_applied=lambda: None)
        self.engine = WorkflowEngine(redis, keys, settings, self.tasks, "test", lambda: None)

    async def task_count(self) -> int:
        return len(await all_task_ids(self.redis, self.keys))

    async def drain_results(self) -> None:
        await self.results.ensure_group()
        reply = await self.redis.xreadgroup(
            "coordinators", "test", {self.keys.results: ">"}, count=100
        )
        for _, entries in reply or []:
            await self.results.handle(entries)

    async def updates(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        await self.engine.ensure_group()
        reply = await self.redis.xreadgroup(
            WORKFLOW_GROUP, "test", {self.keys.workflow_updates: ">"}, count=100
        )
        return [e for _, entries in reply or [] for e in entries]


@pytest.fixture
async def parts(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Parts]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Parts(redis, keys, settings, channel)
    await channel.close()


def define(steps: list[dict[str, Any]], settings: StackSettings, **kw: Any) -> Any:
    return validate_workflow(workflow_request({"steps": steps, **kw}), settings)


async def test_races_and_duplicate_updates_launch_each_step_once(parts: Parts) -> None:
    agent = await add_agent(parts.redis, parts.keys, parts.cache, ["x"], max_concurrency=10)
    defn = define(
        [
            {"id": "a", "capability": "x"},
            {"id": "b", "capability": "x", "depends_on": ["a"]},
            {"id": "c", "capability": "x", "depends_on": ["a"]},
        ],
        parts.settings,
    )
    wid = await parts.engine.store.create(defn)
    await asyncio.gather(*(parts.engine.reconcile(wid) for _ in range(5)))
    assert await parts.task_count() == 1
    assert await parts.scheduler.schedule_once() == 1
    [env] = await read_inbox(parts.redis, parts.keys, agent)
    await send_result(parts.redis, parts.keys, env, result=b'{"v": 1}')
    await parts.drain_results()
    entries = await parts.updates()
    assert len(entries) == 1 and entries[0][1][b"workflow_id"] == wid.encode()
    # The same notification twice, and racing reconciles: b and c get one task each.
    await asyncio.gather(
        parts.engine.handle(entries), parts.engine.handle(entries), parts.engine.reconcile(wid)
    )
    assert await parts.task_count() == 3
    assert await parts.redis.xlen(parts.keys.workflow_updates) == 0
    wf = await parts.engine.store.get(wid)
    assert [len(s.task_ids) for s in wf.steps] == [1, 1, 1]
    assert wf.steps[0].output == b'{"v": 1}' and wf.steps[0].agent_id == agent
    # Replaying the record of an already recorded task changes nothing.
    assert await parts.engine.store.record(wid, list(wf.steps[0].task_ids)) == 0


async def test_a_cancelled_step_task_fails_a_fail_fast_workflow(parts: Parts) -> None:
    defn = define([{"id": "a", "capability": "x"}, {"id": "b", "capability": "x"}], parts.settings)
    wf = await parts.engine.submit(defn)
    await parts.tasks.cancel(wf.steps[0].task_ids[0])
    await parts.engine.handle(await parts.updates())
    done = await parts.engine.store.get(wf.workflow_id)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED
    assert [s.state for s in done.steps] == [workflow_pb2.STEP_STATE_CANCELLED] * 2
    b_task = await parts.tasks.get(done.steps[1].task_ids[0])
    assert b_task.state == 6  # TASK_STATE_CANCELLED by fail_fast
    assert await parts.engine.store.running() == []


async def test_sweep_advances_without_any_notification(parts: Parts) -> None:
    """A lost notification (or one held by a dead coordinator) only delays: the sweep finds it."""
    wf = await parts.engine.submit(define([{"id": "a", "capability": "x"}], parts.settings))
    await parts.tasks.cancel(wf.steps[0].task_ids[0])
    await parts.redis.delete(parts.keys.workflow_updates)
    await parts.engine.sweep()
    done = await parts.engine.store.get(wf.workflow_id)
    assert done.state == workflow_pb2.WORKFLOW_STATE_FAILED


async def test_ended_workflows_expire_after_retention(parts: Parts) -> None:
    wf = await parts.engine.submit(define([{"id": "a", "capability": "x"}], parts.settings))
    await parts.engine.cancel(wf.workflow_id)
    live = await parts.engine.submit(define([{"id": "a", "capability": "x"}], parts.settings))
    assert await parts.engine.store.expire(cutoff_ms=0) == 0
    assert await parts.engine.store.expire(cutoff_ms=2**50) == 1
    with pytest.raises(NotFound):
        await parts.engine.store.get(wf.workflow_id)
    page = await parts.engine.store.list(page_size=10, page_token="", state=0)
    assert [w.workflow_id for w in page.workflows] == [live.workflow_id]
