"""Coordinators killed with SIGKILL mid-workflow: the next resumes it, each step applied once;
a result a killed coordinator read but never applied is taken over, not run again."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.core.addr_file import read_addr_file, remove_addr_file
from hivewire.core.wire import RESULTS_GROUP
from hivewire.v1 import task_pb2, workflow_pb2
from hivewire_services.common.config import env_name
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.conftest import MakeStack
from tests.integration.coordinator_helpers import all_task_ids
from tests.integration.stack import Stack
from tests.settings import StackSettings
from tests.waiting import eventually

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


def spawn(settings: StackSettings, addr_file: Path) -> subprocess.Popen[bytes]:
    """A coordinator process on settings.coordinator_addr (port 0: any), reporting its address."""
    remove_addr_file(addr_file)
    env = {**coordinator_env(settings), "HIVEWIRE_ADDR_FILE": str(addr_file)}
    return subprocess.Popen([sys.executable, "-m", "hivewire_services.coordinator"], env=env)


async def reported(proc: subprocess.Popen[bytes], addr_file: Path) -> str:
    def addr() -> str | None:
        assert proc.poll() is None, f"coordinator exited with {proc.returncode}"
        return read_addr_file(addr_file)

    return await eventually(addr, within=60, message="the coordinator's address")


@pytest.fixture
async def outside(make_stack: MakeStack) -> Stack:
    """Registry, gateway and agents in this process; the coordinator is the test's to run."""
    return await make_stack(coordinator=False, gateway=False)


async def wait_serving(stack: Stack) -> None:
    async def serving() -> bool:
        try:
            await stack.client.list_workflows(page_size=1)
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(serving, within=30, message="the coordinator serving")


@contextlib.asynccontextmanager
async def coordinators(
    outside: Stack, tmp_path: Path
) -> AsyncIterator[tuple[list[subprocess.Popen[bytes]], Path]]:
    """A first coordinator process, the gateway dialling its port (the next ones the test
    spawns bind that port again), and its address file; every one is stopped at the end."""
    addr_file = tmp_path / "coordinator.addr"
    procs = [
        spawn(dataclasses.replace(outside.settings, coordinator_addr="127.0.0.1:0"), addr_file)
    ]
    try:
        await outside.start_gateway(coordinator_addr=await reported(procs[0], addr_file))
        await wait_serving(outside)
        yield procs, addr_file
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)


@pytest.mark.timeout(240)
async def test_kill_9_mid_workflow_then_resume_applies_each_step_once(
    outside: Stack, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    runs: Counter[str] = Counter()

    async def work(ctx: TaskContext) -> int:
        body = ctx.json()
        runs[f"work:{body['index']}"] += 1
        await asyncio.sleep(0.15)  # long enough for the kills to land mid-map
        return int(body["item"]) * 2

    def gen(ctx: TaskContext) -> list[int]:
        runs["gen"] += 1
        return list(range(N))

    def total(ctx: TaskContext) -> int:
        runs["total"] += 1
        return sum(ctx.json()["parents"]["work"])

    def worked() -> int:
        return sum(v for k, v in runs.items() if k.startswith("work:"))

    async with coordinators(outside, tmp_path) as (procs, addr_file):
        agents = [
            await outside.agent("a", {"gen": gen, "work": work, "total": total}, max_concurrency=2),
            await outside.agent("b", {"work": work}, max_concurrency=2),
        ]

        async def orphaned() -> bool:
            """The agents finished what the dead coordinator gave them: results nobody applied."""
            inboxes = [await redis.xlen(keys.inbox(a.agent_id)) for a in agents]
            return inboxes == [0, 0] and all(a.in_flight == 0 for a in agents)

        wf = await outside.client.submit_workflow(
            [
                {"id": "gen", "capability": "gen"},
                {"id": "work", "capability": "work", "map_over": "gen"},
                {"id": "total", "capability": "total", "depends_on": ["work"]},
            ]
        )
        for kill_after in (6, 16):  # two coordinators die mid-map, a third finishes
            await eventually(lambda k=kill_after: worked() >= k, within=60)
            procs[-1].send_signal(signal.SIGKILL)
            procs[-1].wait(10)
            mid = await redis.hgetall(keys.workflow(wf.workflow_id))
            assert int(mid[b"state"]) == workflow_pb2.WORKFLOW_STATE_RUNNING
            await eventually(orphaned, within=30, message="the agents idle")
            procs.append(spawn(outside.settings, addr_file))
            await reported(procs[-1], addr_file)
            await wait_serving(outside)
        done = await outside.client.wait_workflow(wf.workflow_id, timeout=180)

        async def drained() -> bool:
            return await redis.xlen(keys.workflow_updates) == 0

        # Every notification is acknowledged, by the coordinator still running.
        await eventually(drained, message="workflow updates acknowledged")
    assert done.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, done
    assert done.steps[2].output == str(sum(2 * i for i in range(N))).encode()
    assert runs == {"gen": 1, "total": 1, **{f"work:{i}": 1 for i in range(N)}}
    # Exactly one task per step and element was ever created: no launch happened twice.
    ids = await all_task_ids(redis, keys)
    owners = [await redis.hget(keys.task(t), "workflow_id") for t in ids]
    assert owners.count(wf.workflow_id.encode()) == N + 2


@pytest.mark.timeout(120)
async def test_a_result_a_dead_coordinator_read_is_applied_before_the_lease_runs_out(
    outside: Stack, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """A coordinator reads a result and dies before applying it: the next one takes the entry
    over (HIVEWIRE_RESULTS_CLAIM_IDLE, 5 s by default) long before the finished attempt's
    lease (30 s, no longer renewed) runs out, so the task is not run again."""
    release = asyncio.Event()
    runs: Counter[str] = Counter()

    async def hold(ctx: TaskContext) -> str:
        runs[ctx.task_id] += 1
        await release.wait()
        return "done"

    async with coordinators(outside, tmp_path) as (procs, addr_file):
        await outside.agent("a", {"hold": hold})
        task = await outside.client.submit("hold", b"")
        await eventually(lambda: runs[task.task_id] == 1, within=30, message="the task running")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        release.set()  # its result lands with no coordinator reading

        async def read_by_the_dead() -> bool:
            reply = await redis.xreadgroup(
                RESULTS_GROUP, "coordinator-dead", {keys.results: ">"}, count=10
            )
            return bool(reply)

        await eventually(read_by_the_dead, within=30, message="the result read, never applied")
        began = time.monotonic()
        procs.append(spawn(outside.settings, addr_file))
        await reported(procs[-1], addr_file)

        async def succeeded() -> bool:
            state = await redis.hget(keys.task(task.task_id), "state")
            return int(state or 0) == task_pb2.TASK_STATE_SUCCEEDED

        await eventually(succeeded, within=20, message="the result applied")
        assert time.monotonic() - began < 20
        assert runs[task.task_id] == 1
        assert await redis.hget(keys.task(task.task_id), "attempt") == b"1"
