"""AgentService on a real gateway (port 0) in front of the real registry, spoken by hand: hello
checks, reports fenced to the stream's own assignments, slots, resume, silence, drain; and an
SDK agent that resumes across a gateway restart."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.core.wire import INBOX_GROUP, RESULT_FIELD
from hivewire.v1 import agent_pb2, event_pb2, stream_pb2, task_pb2
from hivewire_services.common.errors import field_violations
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import AGENT_STREAMS
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.server import GatewayServer
from tests.integration.conftest import MakeStack
from tests.integration.raw_agent import RawAgent, hello, put_tasks, rich_status
from tests.integration.stack import Stack
from tests.settings import StackSettings
from tests.waiting import eventually

ID = "ab" * 16


@pytest.fixture
async def stack(make_stack: MakeStack) -> Stack:
    return await make_stack(coordinator=False)


@pytest.fixture
async def channel(stack: Stack) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        yield channel


async def results(redis: Redis, keys: Keys) -> list[stream_pb2.TaskResult]:
    entries = await redis.xrange(keys.results)
    return [stream_pb2.TaskResult.FromString(f[RESULT_FIELD]) for _, f in entries]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (hello(name=""), "hello.name"),
        (hello(capabilities=[]), "hello.capabilities"),
        (hello(capabilities=["echo", "Not A Capability"]), "hello.capabilities[1]"),
        (hello(max_concurrency=0), "hello.max_concurrency"),
        (hello(labels={"bad key!": "x"}), "hello.labels"),
        (hello(sdk="x" * 65), "hello.sdk"),
        (hello(resume_agent_id="nope", resume_agent_token="t"), "hello.resume_agent_id"),
        (hello(resume_agent_id=ID), "hello.resume_agent_token"),
        (hello(running_task_ids=[ID]), "hello.running_task_ids"),
        (
            hello(resume_agent_id=ID, resume_agent_token="t", running_task_ids=[ID, "x"]),
            "hello.running_task_ids[1]",
        ),
    ],
)
async def test_a_bad_hello_ends_the_stream_naming_the_field(
    channel: grpc.aio.Channel, bad: object, field: str
) -> None:
    raw = RawAgent(channel)
    await raw.send(hello=bad)
    err = await raw.ended()
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert [v.field for v in field_violations(rich_status(err))] == [field]


async def test_the_first_message_must_be_hello(channel: grpc.aio.Channel) -> None:
    raw = RawAgent(channel)
    await raw.send(heartbeat={"running_task_ids": []})
    err = await raw.ended()
    assert err is not None and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in field_violations(rich_status(err))] == ["hello"]


async def test_reports_count_only_for_the_streams_own_assignments(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    a, b = RawAgent(channel), RawAgent(channel)
    await a.open()
    await b.open()
    assert AGENT_STREAMS.collect()[0].samples[0].value == 2
    await put_tasks(redis, keys, a.agent_id, 1)
    await put_tasks(redis, keys, b.agent_id, 1)
    theirs, mine = await a.assignment(), await b.assignment()
    # b forges a's result (it learned the token somehow), then reports a wrong token for its
    # own task, then its own real result: only the last is stored, and acknowledged.
    await b.report(theirs, result=b"forged")
    await b.report(mine, attempt_token="wrong", result=b"wrong token")
    await b.report(mine, agent_id=a.agent_id)
    assert (await b.ack()).task_id == mine.task_id
    stored = await results(redis, keys)
    assert [(r.task_id, r.agent_id, r.result) for r in stored] == [
        (mine.task_id, b.agent_id, mine.payload)
    ]
    # a's own task is still a's: its real result is stored and acknowledged.
    await a.report(theirs)
    assert (await a.ack()).task_id == theirs.task_id
    assert [r.agent_id for r in await results(redis, keys)] == [b.agent_id, a.agent_id]


async def test_never_more_unfinished_assignments_than_slots(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    raw = RawAgent(channel)
    await raw.open(hello(max_concurrency=2))
    ids = await put_tasks(redis, keys, raw.agent_id, 5)
    held = [await raw.assignment(), await raw.assignment()]
    # All five were in the inbox at once; the gateway took only as many as there are slots.
    pending = await redis.xpending(keys.inbox(raw.agent_id), INBOX_GROUP)
    assert pending["pending"] == 2
    assert not raw.assigned
    done: list[str] = []
    while held:
        finished = held.pop(0)
        await raw.report(finished)
        assert (await raw.ack()).task_id == finished.task_id
        done.append(finished.task_id)
        if len(done) + len(held) < len(ids):
            held.append(await raw.assignment())
        assert len(held) + len(raw.assigned) <= 2
        pending = await redis.xpending(keys.inbox(raw.agent_id), INBOX_GROUP)
        assert pending["pending"] <= 2
    assert done == ids


async def test_resume_resends_what_the_agent_does_not_run(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    first = RawAgent(channel)
    welcome = await first.open()
    assert not welcome.resumed and welcome.heartbeat_interval.ToMilliseconds() == 1000
    running_id, unstarted_id = await put_tasks(redis, keys, first.agent_id, 2)
    running, unstarted = await first.assignment(), await first.assignment()
    assert (running.task_id, unstarted.task_id) == (running_id, unstarted_id)
    first.call.cancel()  # the connection drops; the identity stays

    again = RawAgent(channel)
    resumed = await again.open(
        hello(
            resume_agent_id=first.agent_id,
            resume_agent_token=welcome.agent_token,
            running_task_ids=[running_id],
        )
    )
    assert resumed.resumed and resumed.agent.agent_id == first.agent_id
    assert list(resumed.resumed_task_ids) == [running_id]
    # The first message after welcome resends what the agent does not run, not the one it
    # runs (earlier in the inbox, so it would have come first).
    assert await again.pull() == "assignments"
    assert list(again.assigned) == [unstarted]
    for envelope in (running, unstarted):
        await again.report(envelope)
    assert {(await again.ack()).task_id, (await again.ack()).task_id} == {running_id, unstarted_id}
    assert sorted(r.task_id for r in await results(redis, keys)) == sorted(
        [running_id, unstarted_id]
    )


async def test_resume_of_an_unknown_identity_registers_anew(channel: grpc.aio.Channel) -> None:
    raw = RawAgent(channel)
    welcome = await raw.open(
        hello(resume_agent_id=ID, resume_agent_token="t", running_task_ids=[ID])
    )
    assert not welcome.resumed and welcome.agent.agent_id != ID
    assert list(welcome.resumed_task_ids) == []


async def test_a_silent_stream_ends_after_a_lease_and_keeps_its_identity(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    raw = RawAgent(channel)
    await raw.open()
    err = await raw.ended()  # no heartbeat: the lease is 3 s (conftest settings)
    assert err is not None and err.code() == grpc.StatusCode.DEADLINE_EXCEEDED, err
    # Not deregistered: only the lease running out takes the agent offline.
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    mine = [e.type for e in events if e.agent_id == raw.agent_id]
    assert event_pb2.EVENT_TYPE_AGENT_REGISTERED in mine
    assert event_pb2.EVENT_TYPE_AGENT_DEREGISTERED not in mine


async def test_a_half_close_without_a_drain_leaves_the_agent_registered(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    """A broken connection looks like a half-close to the gateway: it must not deregister (or
    drain) an agent that is about to resume, so only a drained agent leaves."""
    raw = RawAgent(channel)
    await raw.open()
    await raw.call.done_writing()
    err = await raw.ended()
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    assert "drain" in (err.details() or "")
    state = await redis.hget(keys.agent(raw.agent_id), "state")
    assert int(state or 0) == agent_pb2.AGENT_STATE_ONLINE


async def test_drain_then_half_close_deregisters_and_ends_ok(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    raw = RawAgent(channel)
    await raw.open()
    [task_id] = await put_tasks(redis, keys, raw.agent_id, 1)
    envelope = await raw.assignment()
    await raw.send(drain={})

    async def draining() -> bool:
        state = await redis.hget(keys.agent(raw.agent_id), "state")
        return int(state or 0) == agent_pb2.AGENT_STATE_DRAINING

    await eventually(draining, message="the agent DRAINING")
    await put_tasks(redis, keys, raw.agent_id, 1)  # not sent: the agent drains
    await raw.report(envelope)
    await raw.call.done_writing()
    # The ack comes before the end, which is OK once the agent is deregistered.
    assert (await raw.ack()).task_id == task_id
    assert await raw.ended() is None
    state = await redis.hget(keys.agent(raw.agent_id), "state")
    assert int(state or 0) == agent_pb2.AGENT_STATE_OFFLINE


async def test_a_gateway_restart_ends_streams_and_agents_resume(make_stack: MakeStack) -> None:
    stack = await make_stack()

    async def echo(ctx: TaskContext) -> bytes:
        return ctx.payload

    agent = await stack.agent("resumer", {"echo": echo}, transport="grpc")
    agent_id = agent.agent_id

    async def succeeded(task_id: str) -> bool:
        return await stack.states([task_id]) == [task_pb2.TASK_STATE_SUCCEEDED]

    [before] = await stack.submit("echo", payload=b"1")
    await eventually(lambda: succeeded(before.task_id), message="the task before the restart")
    await stack.restart_gateway()  # shutdown ends the agent's stream with UNAVAILABLE
    [after] = await stack.submit("echo", payload=b"2")
    await eventually(lambda: succeeded(after.task_id), message="the task after the restart")
    assert agent.agent_id == agent_id  # the same identity, resumed on the new gateway


async def test_progress_reports_reach_the_coordinator_without_ending_the_task(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    stack = await make_stack()
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        raw = RawAgent(channel)
        await raw.open(hello(max_concurrency=1))
        await stack.wait_agents(1)
        [task] = await stack.submit("echo", payload=b"p")
        envelope = await raw.assignment()
        assert envelope.task_id == task.task_id
        progress = stream_pb2.TaskProgress(fraction=0.5, message="half way")
        await raw.report(envelope, stream_pb2.TASK_OUTCOME_PROGRESS, progress=progress)
        await raw.report(envelope)
        assert (await raw.ack()).task_id == task.task_id
        assert stack.coordinator is not None
        store = stack.coordinator.store

        async def finished() -> task_pb2.Task | None:
            stored = await store.get(task.task_id)
            return stored if stored.state == task_pb2.TASK_STATE_SUCCEEDED else None

        done = await eventually(finished, message="the task SUCCEEDED")
        assert done.result == b"p" and done.attempt == 1


async def test_hello_while_the_registry_is_unreachable_is_unavailable(
    settings: StackSettings, refused_addr: str
) -> None:
    gateway = GatewayServer(dataclasses.replace(settings, registry_addr=refused_addr).gateway())
    port = await gateway.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            raw = RawAgent(channel)
            await raw.send(hello=hello())
            err = await raw.ended()
            assert err is not None and err.code() == grpc.StatusCode.UNAVAILABLE, err
    finally:
        await gateway.shutdown()


async def test_a_newer_stream_of_the_same_agent_takes_over(
    channel: grpc.aio.Channel, redis: Redis, keys: Keys
) -> None:
    older = RawAgent(channel)
    welcome = await older.open()
    [task_id] = await put_tasks(redis, keys, older.agent_id, 1)
    await older.assignment()
    # The agent reconnects while this gateway still holds its older stream.
    newer = RawAgent(channel)
    resumed = await newer.open(
        hello(resume_agent_id=older.agent_id, resume_agent_token=welcome.agent_token)
    )
    assert resumed.resumed
    err = await older.ended()
    assert err is not None and err.code() == grpc.StatusCode.ABORTED, err
    assert (await newer.assignment()).task_id == task_id  # not running: sent again


async def test_past_the_bound_of_agent_streams_is_resource_exhausted(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(coordinator=False, agent_max_connections=1)
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        first = RawAgent(channel)
        await first.open()
        second = RawAgent(channel)
        # The gateway refuses the stream as it opens: the refusal may end it before the hello
        # is written (then the write raises it), or after.
        with contextlib.suppress(grpc.aio.AioRpcError):
            await second.send(hello=hello())
        err = await second.ended()
        assert err is not None and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err
