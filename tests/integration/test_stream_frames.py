"""StreamEvents frames on a real in-process stack: snapshot, heartbeats, SDK resume."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from hivewire.agent import Agent, TaskContext
from hivewire.client import Client
from hivewire.v1 import event_pb2, gateway_pb2_grpc, task_pb2
from hivewire_services.common.errors import field_violations
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.integration.test_gateway_events import add, ev, rich_status
from tests.waiting import eventually


def hold_setup(release: asyncio.Event) -> Any:
    def setup(agent: Agent) -> None:
        @agent.handler("hold")
        async def hold(ctx: TaskContext) -> str:
            await release.wait()
            return "done"

    return setup


async def read_frames(call: Any, until: Any) -> list[Any]:
    frames = []
    async with asyncio.timeout(15):
        while True:
            frame = await call.read()
            assert frame is not grpc.aio.EOF
            frames.append(frame)
            if until(frame):
                return frames


async def test_snapshot_then_live(stack: Stack) -> None:
    release = asyncio.Event()
    agent = await stack.agent("holder", setup=hold_setup(release), max_concurrency=1)
    async with Client(stack.gateway_addr) as client:
        held = await client.submit("hold", {})
        queued = [await client.submit("nobody", {"n": i}) for i in range(3)]

        async def held_assigned() -> bool:
            return (await client.get(held.task_id)).state != task_pb2.TASK_STATE_PENDING

        await eventually(held_assigned)
        stub = gateway_pb2_grpc.GatewayServiceStub(client._channel)
        call = stub.StreamEvents(event_pb2.StreamEventsRequest(include_snapshot=True))
        frames = await read_frames(call, lambda f: f.HasField("snapshot_complete"))
        snap = [f.event for f in frames[:-1]]
        assert all(e.snapshot for e in snap)
        agents = [e for e in snap if e.type == event_pb2.EVENT_TYPE_AGENT_REGISTERED]
        assert [(e.agent_id, e.message) for e in agents] == [(agent.agent_id, "ONLINE")]
        tasks = {e.task_id: e for e in snap if e.task_id}
        assert set(tasks) == {held.task_id, *(t.task_id for t in queued)}
        assert tasks[held.task_id].agent_id == agent.agent_id
        assert tasks[held.task_id].task_state in (
            task_pb2.TASK_STATE_ASSIGNED,
            task_pb2.TASK_STATE_RUNNING,
        )
        assert {tasks[t.task_id].task_state for t in queued} == {task_pb2.TASK_STATE_PENDING}
        assert frames[-1].snapshot_complete.cursor
        # Live events follow the snapshot: the held task finishing is seen.
        release.set()
        live = await read_frames(
            call,
            lambda f: (
                f.event.task_id == held.task_id
                and f.event.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED
            ),
        )
        assert not any(f.event.snapshot for f in live)
        call.cancel()

        # A filtered snapshot holds only what matches.
        only = stub.StreamEvents(
            event_pb2.StreamEventsRequest(include_snapshot=True, capability="nobody")
        )
        frames = await read_frames(only, lambda f: f.HasField("snapshot_complete"))
        assert sorted(f.event.task_id for f in frames[:-1]) == sorted(t.task_id for t in queued)
        only.cancel()


async def test_idle_stream_gets_heartbeats_with_its_cursor(
    stack: Stack, redis: Redis, keys: Keys
) -> None:
    async with Client(stack.gateway_addr) as client:
        stub = gateway_pb2_grpc.GatewayServiceStub(client._channel)
        req = event_pb2.StreamEventsRequest(task_id="ab" * 16)
        req.heartbeat_interval.FromSeconds(1)
        call = stub.StreamEvents(req)
        await asyncio.wait_for(call.initial_metadata(), 5)
        ids = await add(redis, keys, ev("ab" * 16))
        frames = await read_frames(call, lambda f: f.HasField("heartbeat"))
        assert [f.event.cursor for f in frames[:-1]] == ids
        assert frames[-1].heartbeat.cursor == ids[0]
        assert frames[-1].heartbeat.time.seconds > 0
        call.cancel()

        bad = event_pb2.StreamEventsRequest()
        bad.heartbeat_interval.FromMilliseconds(10)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StreamEvents(bad).read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in field_violations(rich_status(info.value))] == [
            "heartbeat_interval"
        ]


async def collect(client: Client, n: int, got: list[str], **filters: Any) -> None:
    async for event in client.events(**filters):
        got.append(event.message)
        if len(got) == n:
            return


async def test_sdk_resumes_across_a_gateway_restart(stack: Stack, redis: Redis, keys: Keys) -> None:
    got: list[str] = []
    async with Client(stack.gateway_addr) as client:
        reader = asyncio.create_task(collect(client, 30, got, task_id="cd" * 16))
        await eventually(lambda: stack.subscribers() == 1)
        await add(redis, keys, *[ev("cd" * 16, message=f"a{i}") for i in range(10)])
        await eventually(lambda: len(got) == 10)
        await stack.gateway.shutdown()
        # Written while no gateway runs: the client must get them after it reconnects.
        await add(redis, keys, *[ev("cd" * 16, message=f"b{i}") for i in range(10)])
        await stack.restart_gateway()
        await add(redis, keys, *[ev("cd" * 16, message=f"c{i}") for i in range(10)])
        await asyncio.wait_for(reader, 30)
    assert got == [f"{p}{i}" for p in "abc" for i in range(10)]


async def test_sdk_resumes_after_being_cut_off_as_too_slow(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    stack = await make_stack(stream_queue_size=4)
    got: list[str] = []
    async with Client(stack.gateway_addr) as client:
        reader = asyncio.create_task(collect(client, 300, got))
        await eventually(lambda: stack.subscribers() == 1)
        # Bursts of 100 in one read overflow a queue of 4 at once: the stream is cut off
        # each time and the SDK resumes from the cursor the gateway reported.
        for burst in range(3):
            await add(redis, keys, *[ev(message=f"{burst}-{i}") for i in range(100)])
            await eventually(lambda b=burst: len(got) == 100 * (b + 1))
        await asyncio.wait_for(reader, 30)
    assert got == [f"{b}-{i}" for b in range(3) for i in range(100)]


async def test_batches_carry_waiting_events_in_order(
    stack: Stack, redis: Redis, keys: Keys
) -> None:
    async with Client(stack.gateway_addr) as client:
        stub = gateway_pb2_grpc.GatewayServiceStub(client._channel)
        batched = stub.StreamEvents(event_pb2.StreamEventsRequest(max_batch=50, task_id="ef" * 16))
        single = stub.StreamEvents(event_pb2.StreamEventsRequest(task_id="ef" * 16))
        for call in (batched, single):
            await asyncio.wait_for(call.initial_metadata(), 5)
        # 120 events in one transaction reach the hub in one read: they wait together.
        ids = await add(redis, keys, *[ev("ef" * 16, message=str(i)) for i in range(120)])
        got: list[str] = []
        sizes: list[int] = []
        async with asyncio.timeout(15):
            while len(got) < 120:
                frame = await batched.read()
                events = frame.events.events if frame.HasField("events") else [frame.event]
                sizes.append(len(events))
                got.extend(e.cursor for e in events)
        assert got == ids
        assert max(sizes) == 50 and len(sizes) < 120
        # Without max_batch every frame carries one event.
        frames = [await asyncio.wait_for(single.read(), 5) for _ in range(120)]
        assert [f.WhichOneof("frame") for f in frames] == ["event"] * 120
        assert [f.event.cursor for f in frames] == ids
        for call in (batched, single):
            call.cancel()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StreamEvents(event_pb2.StreamEventsRequest(max_batch=1001)).read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in field_violations(rich_status(info.value))] == ["max_batch"]
