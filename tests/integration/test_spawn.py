"""Child tasks spawned from handlers (ctx.spawn) against real services, Redis and SDK agents."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from hivewire.agent import ChildTaskFailed, NonRetryableError, TaskContext
from hivewire.v1 import task_pb2, workflow_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.coordinator_helpers import all_task_ids
from tests.integration.stack import Stack
from tests.waiting import eventually


async def test_a_spawned_childs_result_reaches_the_parent(stack: Stack, transport: str) -> None:
    children: list[str] = []

    async def parent(ctx: TaskContext) -> Any:
        doubled = await ctx.spawn("double", {"n": ctx.json()["n"]})
        try:
            await ctx.spawn("broken", {}, max_attempts=1)
        except ChildTaskFailed as exc:
            children.append(exc.task.task_id)
            return {"doubled": doubled, "broken": exc.task.error}
        return {"doubled": doubled}

    def double(ctx: TaskContext) -> int:
        children.append(ctx.task_id)
        return int(ctx.json()["n"]) * 2

    def broken(ctx: TaskContext) -> None:
        raise NonRetryableError("no good")

    await stack.agent(
        "p",
        {"parent": parent, "double": double, "broken": broken},
        transport=transport,
        gateway_addr=stack.settings.gateway_addr,
    )
    done = await stack.client.submit_and_wait("parent", {"n": 21}, timeout=30)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED, done
    assert done.result == b'{"doubled":42,"broken":"NonRetryableError: no good"}'
    assert len(children) == 2
    for child_id in children:
        child = await stack.client.get(child_id)
        assert child.parent_task_id == done.task_id
        assert child.trace_id == done.trace_id


async def test_cancelling_the_parent_cancels_its_children(stack: Stack) -> None:
    started = asyncio.Event()
    spawned: list[str] = []

    async def parent(ctx: TaskContext) -> Any:
        return await ctx.spawn("forever", {})

    async def forever(ctx: TaskContext) -> None:
        spawned.append(ctx.task_id)
        started.set()
        await asyncio.Event().wait()  # until cancelled

    await stack.agent(
        "p", {"parent": parent, "forever": forever}, gateway_addr=stack.settings.gateway_addr
    )
    task = await stack.client.submit("parent", {})
    await asyncio.wait_for(started.wait(), 30)
    await stack.client.cancel(task.task_id)

    async def child_cancelled() -> bool:
        child = await stack.client.get(spawned[0])
        return child.state == task_pb2.TASK_STATE_CANCELLED

    await eventually(child_cancelled, within=30, message="the child cancelled")
    parent_task = await stack.client.get(task.task_id)
    assert parent_task.state == task_pb2.TASK_STATE_CANCELLED


async def test_only_the_running_parent_attempt_may_spawn(
    stack: Stack, redis: Redis, keys: Keys
) -> None:
    release = asyncio.Event()
    running: list[str] = []

    async def hold(ctx: TaskContext) -> str:
        running.append(ctx.task_id)
        await release.wait()
        return "done"

    await stack.agent("p", {"hold": hold})
    task = await stack.client.submit("hold", {})
    await eventually(lambda: running, within=30, message="the parent running")
    stub = stack.client._stub  # the raw gateway API: what ctx.spawn sends

    async def spawn(parent: str, token: str) -> task_pb2.Task:
        req = task_pb2.SubmitTaskRequest(
            capability="hold", parent_task_id=parent, parent_attempt_token=token
        )
        return (await stub.SubmitTask(req, timeout=5)).task

    before = await all_task_ids(redis, keys)
    for parent, token, code in [
        (task.task_id, "not-the-token", grpc.StatusCode.PERMISSION_DENIED),
        ("f" * 32, "x", grpc.StatusCode.NOT_FOUND),
        (task.task_id, "", grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await spawn(parent, token)
        assert err.value.code() == code
    assert await all_task_ids(redis, keys) == before  # nothing written
    token = (await redis.hget(keys.task(task.task_id), "token")).decode()
    child = await spawn(task.task_id, token)
    assert child.parent_task_id == task.task_id
    release.set()
    await stack.client.wait(task.task_id, timeout=30)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await spawn(task.task_id, token)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_workflow_steps_children_join_it_and_are_cancelled_with_it(stack: Stack) -> None:
    spawned: list[str] = []

    async def step(ctx: TaskContext) -> Any:
        return await ctx.spawn("forever", {})

    async def forever(ctx: TaskContext) -> None:
        spawned.append(ctx.task_id)
        await asyncio.Event().wait()  # until cancelled

    await stack.agent(
        "p", {"step": step, "forever": forever}, gateway_addr=stack.settings.gateway_addr
    )
    wf = await stack.client.submit_workflow([{"id": "s", "capability": "step"}])
    await eventually(lambda: spawned, within=30, message="the child running")
    child = await stack.client.get(spawned[0])
    assert child.workflow_id == wf.workflow_id and child.trace_id == wf.trace_id
    await stack.client.cancel_workflow(wf.workflow_id)

    async def child_cancelled() -> bool:
        got = await stack.client.get(spawned[0])
        return got.state == task_pb2.TASK_STATE_CANCELLED

    await eventually(child_cancelled, within=30, message="the child cancelled")
    done = await stack.client.wait_workflow(wf.workflow_id, timeout=30)
    assert done.state == workflow_pb2.WORKFLOW_STATE_CANCELLED
