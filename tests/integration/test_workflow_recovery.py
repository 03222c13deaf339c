"""Coordinators killed with SIGKILL mid-workflow: the next resumes it, each step applied once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.v1 import workflow_pb2
from hivewire_services.common.config import env_name
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.workflow_stack import Stack, running_stack
from tests.settings import StackSettings

N = 30


def coordinator_env(settings: StackSettings) -> dict[str, str]:
    values = {
        "redis_url": settings.redis_url,
        "namespace": settings.namespace,
        "registry_addr": settings.registry_addr,
        "coordinator_addr": settings.coordinator_addr,
        "scheduler_interval": "0.05",
        "retry_initial_backoff": "0.05",
        "workflow_claim_idle": "1.0",
        "workflow_sweep_interval": "1.0",
        "log_level": "WARNING",
    }
    return {**os.environ, **{env_name(k): str(v) for k, v in values.items()}}


def spawn(settings: StackSettings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hivewire_services.coordinator"], env=coordinator_env(settings)
    )


@pytest.fixture
async def outside(settings: StackSettings) -> AsyncIterator[Stack]:
    """Registry, gateway and agents in this process; the coordinator is the test's to run."""
    async with running_stack(settings, with_coordinator=False) as s:
        yield s


async def wait_serving(stack: Stack) -> None:
    for _ in range(300):
        try:
            await stack.client.list_workflows(page_size=1)
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    raise AssertionError("coordinator never served")


@pytest.mark.timeout(240)
async def test_kill_9_mid_workflow_then_resume_applies_each_step_once(
    outside: Stack, redis: Redis, keys: Keys
) -> None:
    runs: Counter[str] = Counter()

    async def work(ctx: TaskContext) -> int:
        body = ctx.json()
        runs[f"work:{body['index']}"] += 1
        await asyncio.sleep(0.15)
        return int(body["item"]) * 2

    def gen(ctx: TaskContext) -> list[int]:
        runs["gen"] += 1
        return list(range(N))

    def total(ctx: TaskContext) -> int:
        runs["total"] += 1
        return sum(ctx.json()["parents"]["work"])

    def worked() -> int:
        return sum(v for k, v in runs.items() if k.startswith("work:"))

    procs = [spawn(outside.settings)]
    try:
        await wait_serving(outside)
        await outside.agent("a", {"gen": gen, "work": work, "total": total}, concurrency=2)
        await outside.agent("b", {"work": work}, concurrency=2)
        wf = await outside.client.submit_workflow(
            [
                {"id": "gen", "capability": "gen"},
                {"id": "work", "capability": "work", "map_over": "gen"},
                {"id": "total", "capability": "total", "depends_on": ["work"]},
            ]
        )
        for kill_after in (6, 16):  # two coordinators die mid-map, a third finishes
            for _ in range(600):
                if worked() >= kill_after:
                    break
                await asyncio.sleep(0.05)
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait(10)
            mid = await redis.hgetall(keys.workflow(wf.workflow_id))
            assert int(mid[b"state"]) == workflow_pb2.WORKFLOW_STATE_RUNNING
            await asyncio.sleep(0.3)
            procs.append(spawn(outside.settings))
            await wait_serving(outside)
        done = await outside.client.wait_workflow(wf.workflow_id, timeout=180)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert done.steps[2].output == str(sum(2 * i for i in range(N))).encode()
    assert runs == {"gen": 1, "total": 1, **{f"work:{i}": 1 for i in range(N)}}
    # Exactly one task per step and element was ever created: no launch happened twice.
    ids = [i.decode() for i in await redis.zrange(keys.tasks_index, 0, -1)]
    owners = [await redis.hget(keys.task(t), "workflow_id") for t in ids]
    assert owners.count(wf.workflow_id.encode()) == N + 2
    assert await redis.xlen(keys.workflow_updates) == 0  # every notification acknowledged
