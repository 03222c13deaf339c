"""Live progress and output through the whole stack: SDK agents report (tests taking `transport`
over both agent transports), the coordinator stores, the gateway's StreamTaskOutput replays and
follows, the client and the CLI read."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import grpc
import pytest

from hivewire.agent import TaskContext
from hivewire.client import Client, task_to_dict
from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack
from tests.waiting import eventually

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED


async def collect(
    client: Client, task_id: str, into: list[stream_pb2.OutputChunk], after: str = ""
) -> None:
    async for chunk in client.task_output(task_id, follow=True, after_cursor=after):
        into.append(chunk)


def texts(chunks: list[stream_pb2.OutputChunk]) -> list[str]:
    return [c.text for c in chunks]


def gated(step: asyncio.Event) -> Callable[[TaskContext], object]:
    """A handler: five lines and 50%, then (once `step` is set) five more and a result."""

    async def build(ctx: TaskContext) -> str:
        await ctx.output("\n".join(f"line {i}" for i in range(5)))
        await ctx.progress(0.5, "compiling")
        await step.wait()
        for i in range(5, 10):
            await ctx.output(f"line {i}", "stderr" if i == 7 else "stdout")
        ctx.logger.info("linked")
        return "built"

    return build


async def test_follow_from_the_start_and_from_the_middle_until_the_task_ends(
    stack: Stack, transport: str
) -> None:
    step = asyncio.Event()
    await stack.agent("builder", {"build": gated(step)}, transport=transport)
    client = stack.client
    task = await client.submit("build")
    from_start: list[stream_pb2.OutputChunk] = []
    first = asyncio.ensure_future(collect(client, task.task_id, from_start))
    await eventually(lambda: len(from_start) == 5, message="the first five lines, live")
    running = await client.get(task.task_id)
    assert running.state == task_pb2.TASK_STATE_RUNNING
    assert (running.progress.fraction, running.progress.message) == (0.5, "compiling")
    assert task_to_dict(running)["progress"]["fraction"] == 0.5
    # From the middle: after line 2's cursor, while the task still runs.
    from_middle: list[stream_pb2.OutputChunk] = []
    second = asyncio.ensure_future(collect(client, task.task_id, from_middle, from_start[2].cursor))
    await eventually(lambda: len(from_middle) == 2, message="lines 3 and 4 replayed")
    assert not first.done() and not second.done()  # following: the task has not ended
    step.set()
    await asyncio.wait_for(asyncio.gather(first, second), 30)  # both end with the task
    everything = [f"line {i}" for i in range(10)] + ["INFO linked"]
    assert texts(from_start) == everything
    assert texts(from_middle) == everything[3:]
    assert [c.stream for c in from_start][7] == stream_pb2.OUTPUT_STREAM_STDERR
    assert from_start[-1].stream == stream_pb2.OUTPUT_STREAM_LOG
    assert all(c.cursor and c.HasField("time") for c in from_start)
    done = await client.get(task.task_id)
    assert done.state == SUCCEEDED and done.output_bytes > 0
    # A replay of a finished task ends by itself; so does one past the last chunk.
    assert texts([c async for c in client.task_output(task.task_id)]) == everything
    last = from_start[-1].cursor
    assert [c async for c in client.task_output(task.task_id, after_cursor=last)] == []
    assert [c async for c in client.task_output(task.task_id, after_cursor=last, follow=True)] == []


async def test_events_carry_progress_and_one_output_event_per_report(
    stack: Stack, transport: str
) -> None:
    step = asyncio.Event()
    step.set()
    await stack.agent("builder", {"build": gated(step)}, transport=transport)
    task = await stack.client.submit("build")
    await stack.client.wait(task.task_id, timeout=30)
    events: list[event_pb2.Event] = []
    async for event in stack.client.events(task_id=task.task_id, since_cursor="0-0"):
        events.append(event)
        if event.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED:
            break
    progress = [e for e in events if e.type == event_pb2.EVENT_TYPE_TASK_PROGRESS]
    assert [(e.progress.fraction, e.message) for e in progress] == [(0.5, "compiling")]
    output = [e for e in events if e.type == event_pb2.EVENT_TYPE_TASK_OUTPUT]
    assert 1 <= len(output) <= 3 and sum(e.output_chunks for e in output) == 11
    # The last output event's cursor is where the output ends.
    after = [
        c
        async for c in stack.client.task_output(task.task_id, after_cursor=output[-1].output_cursor)
    ]
    assert after == []
    # The type filter passes only what is asked for.
    only: list[event_pb2.Event] = []
    async for event in stack.client.events(
        task_id=task.task_id, types=[event_pb2.EVENT_TYPE_TASK_OUTPUT], since_cursor="0-0"
    ):
        only.append(event)
        if len(only) == len(output):
            break
    assert [e.cursor for e in only] == [e.cursor for e in output]


async def test_output_past_the_limit_is_cut_with_a_marker(make_stack: MakeStack) -> None:
    stack = await make_stack(task_output_max_bytes=4096)

    async def spam(ctx: TaskContext) -> str:
        for i in range(200):
            await ctx.output(f"{i:03d} " + "x" * 96)
        return "ok"

    await stack.agent("spammer", {"spam": spam})
    task = await stack.client.submit("spam")
    done = await stack.client.wait(task.task_id, timeout=30)
    chunks = [c async for c in stack.client.task_output(task.task_id)]
    *kept, marker = chunks
    assert "output truncated" in marker.text and marker.stream == stream_pb2.OUTPUT_STREAM_LOG
    assert texts(kept) == [f"{i:03d} " + "x" * 96 for i in range(len(kept))]  # a prefix
    assert 4096 - 130 < done.output_bytes <= 4096
    as_stored = [stream_pb2.OutputChunk(stream=c.stream, text=c.text, time=c.time) for c in kept]
    assert done.output_bytes == sum(len(c.SerializeToString()) for c in as_stored)
    assert done.output_dropped_bytes > 150 * 100  # everything after the cut, counted on


async def test_output_expires_with_its_task(make_stack: MakeStack) -> None:
    stack = await make_stack(task_retention_seconds=0.5)

    async def hello(ctx: TaskContext) -> str:
        await ctx.output("hello")
        return "ok"

    await stack.agent("greeter", {"hello": hello})
    task = await stack.client.submit("hello")
    await stack.client.wait(task.task_id, timeout=30)
    redis, keys = stack.coordinator.redis, stack.coordinator.keys  # type: ignore[union-attr]
    task_key, output_key = keys.task(task.task_id), keys.output(task.task_id)
    assert await redis.exists(output_key) == 1

    async def both_gone() -> bool:
        return await redis.exists(task_key, output_key) == 0

    await eventually(both_gone, within=20, message="retention of the task and its output")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.client.get(task.task_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_requests_get_clear_statuses(make_stack: MakeStack) -> None:
    stack = await make_stack(output_max_followers=1)
    client = stack.client

    async def first_error(**kw: object) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in client.task_output(**kw):  # type: ignore[arg-type]
                pass
        return err.value.code()

    assert await first_error(task_id="f" * 32) == grpc.StatusCode.NOT_FOUND
    assert await first_error(task_id="f" * 32, follow=True) == grpc.StatusCode.NOT_FOUND
    assert await first_error(task_id="nope") == grpc.StatusCode.INVALID_ARGUMENT
    task = await client.submit("nobody")  # never runs: followed until cancelled
    for cursor in ("nope", "1-", "99999999999999999999-0"):
        code = await first_error(task_id=task.task_id, after_cursor=cursor)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, cursor
    follower = asyncio.ensure_future(collect(client, task.task_id, []))
    await eventually(lambda: stack.gateway.output.followers == 1, message="one follower")  # type: ignore[union-attr]
    code = await first_error(task_id=task.task_id, follow=True)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [c async for c in client.task_output(task.task_id)] == []  # replays are not limited
    follower.cancel()
    await eventually(lambda: stack.gateway.output.followers == 0, message="the slot freed")  # type: ignore[union-attr]


async def test_progress_timeout_fails_a_silent_attempt_but_not_a_chatty_one(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(reclaim_interval=0.1)
    never = asyncio.Event()

    async def hang(ctx: TaskContext) -> str:
        await ctx.output("starting")
        await never.wait()  # hangs silently while the agent keeps heartbeating
        return "never"

    async def chatty(ctx: TaskContext) -> str:
        # 2 s, twice the timeout, with reports ten times as often as the timeout: the whole
        # stack shares this test's event loop, so a stall of the machine delays the reports and
        # the deadline check alike, but not always in that order.
        for i in range(20):
            await ctx.progress(i / 20)
            await asyncio.sleep(0.1)  # the work between two reports
        return "ok"

    await stack.agent("worker", {"hang": hang, "chatty": chatty})
    silent = await stack.client.submit("hang", max_attempts=2, progress_timeout=1.0)
    busy = await stack.client.submit("chatty", max_attempts=1, progress_timeout=1.0)
    assert silent.progress_timeout.ToMilliseconds() == 1000
    failed = await stack.client.wait(silent.task_id, timeout=30)
    assert (failed.state, failed.attempt) == (task_pb2.TASK_STATE_FAILED, 2)
    assert "progress_timeout" in failed.error
    ok = await stack.client.wait(busy.task_id, timeout=30)
    assert (ok.state, ok.attempt) == (SUCCEEDED, 1), ok.error
    # One output for both attempts of the silent task.
    assert texts([c async for c in stack.client.task_output(silent.task_id)]) == ["starting"] * 2


async def test_a_late_report_of_a_superseded_attempt_is_ignored(make_stack: MakeStack) -> None:
    # Heartbeats rare enough that none tells the agent to stop attempt 1 in between.
    stack = await make_stack(reclaim_interval=0.1, lease_seconds=60.0)
    second_started = asyncio.Event()
    zombie_done = asyncio.Event()

    async def slow(ctx: TaskContext) -> str:
        if ctx.attempt == 1:
            await second_started.wait()  # silent past the progress timeout: superseded
            await ctx.output("zombie")
            await ctx.progress(0.99, "zombie")
            return "late"
        second_started.set()
        await ctx.output("second")
        await ctx.progress(0.5, "second")
        await zombie_done.wait()
        return "second"

    agent = await stack.agent("worker", {"slow": slow}, max_concurrency=2)
    agent.after_task(lambda ctx, value: zombie_done.set() if ctx.attempt == 1 else None)
    task = await stack.client.submit("slow", max_attempts=2, progress_timeout=0.5)
    done = await stack.client.wait(task.task_id, timeout=30)
    assert (done.state, done.attempt, done.result) == (SUCCEEDED, 2, b"second")
    assert (done.progress.fraction, done.progress.message) == (0.5, "second")
    assert texts([c async for c in stack.client.task_output(task.task_id)]) == ["second"]
    ignored: list[event_pb2.Event] = []
    async for event in stack.client.events(
        task_id=task.task_id, types=[event_pb2.EVENT_TYPE_RESULT_IGNORED], since_cursor="0-0"
    ):
        ignored.append(event)
        if "progress report" in event.message:
            break
    assert "superseded attempt 1 (current 2)" in ignored[-1].message


async def test_cli_task_output_follows_until_the_task_ends(stack: Stack) -> None:
    step = asyncio.Event()
    await stack.agent("builder", {"build": gated(step)})
    task = await stack.client.submit("build")
    cli = [sys.executable, "-m", "hivewire.cli", "--addr", stack.gateway_addr]
    follow = await asyncio.create_subprocess_exec(
        *cli, "task", "output", task.task_id, "--follow",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert follow.stdout is not None
        for i in range(5):  # printed live, before the task goes on
            line = await asyncio.wait_for(follow.stdout.readline(), 30)
            assert line.decode().rstrip("\n") == f"line {i}"
        shown = await asyncio.create_subprocess_exec(
            *cli, "task", "get", task.task_id, stdout=asyncio.subprocess.PIPE
        )
        detail, _ = await asyncio.wait_for(shown.communicate(), 30)
        assert "50% compiling" in detail.decode()
        step.set()
        out, err = await asyncio.wait_for(follow.communicate(), 30)
        assert follow.returncode == 0, err.decode()
        assert out.decode().splitlines() == [f"line {i}" for i in (5, 6, 8, 9)]
        assert err.decode().splitlines() == ["line 7", "INFO linked"]
    finally:
        if follow.returncode is None:
            follow.kill()
            await follow.wait()
