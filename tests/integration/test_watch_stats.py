"""WatchStats on a real in-process stack: the numbers match what the test did."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from hivewire.agent import Agent, TaskContext
from hivewire.client import Client
from hivewire.v1 import gateway_pb2_grpc, stats_pb2, task_pb2
from tests.integration.stack import Stack


def setup(agent: Agent) -> None:
    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> bytes:
        return ctx.payload

    @agent.handler("fail")
    async def fail(ctx: TaskContext) -> None:
        raise RuntimeError("always")


def _by_cap(stats: stats_pb2.Stats) -> dict[str, stats_pb2.CapabilityStats]:
    return {c.capability: c for c in stats.capabilities}


def _settled(stats: stats_pb2.Stats) -> bool:
    caps = _by_cap(stats)
    return (
        stats.tasks_by_state.get("SUCCEEDED") == 5
        and stats.tasks_by_state.get("FAILED") == 1
        and stats.dead_letters == 1
        and "nobody" in caps
        and caps["nobody"].queue_depth == 3
    )


async def test_stats_agree_with_what_happened(stack: Stack) -> None:
    agent = await stack.agent("worker", setup=setup, max_concurrency=4)
    async with Client(stack.gateway_addr) as client:
        frames: list[stats_pb2.Stats] = []
        watch = client.watch_stats(interval=0.2)
        first = await asyncio.wait_for(anext(watch), 10)
        assert first.agents_by_state == {"ONLINE": 1}
        assert first.subscribers == 0
        events = aiter(client.events())  # one StreamEvents subscriber, counted in the stats
        echo = [await client.submit("echo", {"n": i}) for i in range(5)]
        failing = await client.submit("fail", {}, max_attempts=2)
        for i in range(3):
            await client.submit("nobody", {"n": i})
        reading = asyncio.create_task(anext(events))
        for task in [*echo, failing]:
            await client.wait(task.task_id, timeout=30)
        async with asyncio.timeout(30):
            async for stats in watch:
                frames.append(stats)
                if _settled(stats) and stats.end_to_end_latency.count == 6 and stats.subscribers:
                    break
        reading.cancel()
    last = frames[-1]
    assert last.tasks_by_state["PENDING"] == 3
    assert last.tasks_by_state["ASSIGNED"] == last.tasks_by_state["RUNNING"] == 0
    assert last.retries == 1
    assert last.reclaims == 0
    assert last.agents_by_state == {"ONLINE": 1}
    assert last.subscribers == 1
    caps = _by_cap(last)
    assert (caps["echo"].agents, caps["fail"].agents, caps["nobody"].agents) == (1, 1, 0)
    assert caps["echo"].queue_depth == 0
    # Six tasks ended (5 echo, 1 fail) and six first attempts were assigned.
    assert last.end_to_end_latency.count == 6
    assert last.assignment_latency.count == 6
    p = last.end_to_end_latency
    assert p.p50.ToNanoseconds() <= p.p90.ToNanoseconds() <= p.p99.ToNanoseconds()
    assert p.p99.ToNanoseconds() < 60 * 10**9
    # Throughput: over all frames, echo's rate times the interval adds up to the 5 it ran.
    assert any(_by_cap(f).get("echo", stats_pb2.CapabilityStats()).throughput_per_second > 0
               for f in frames)  # fmt: skip
    assert any(f.events_per_second > 0 for f in frames)
    assert agent.agent_id


async def test_bad_interval_is_invalid_argument(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        stub: Any = gateway_pb2_grpc.GatewayServiceStub(channel)
        req = stats_pb2.WatchStatsRequest()
        req.interval.FromMilliseconds(5)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.WatchStats(req).read()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "interval" in (info.value.details() or "")


async def test_rates_sum_to_the_work_done(stack: Stack) -> None:
    """Integrating the per-interval throughput over consecutive frames counts every task."""
    await stack.agent("worker", setup=setup, max_concurrency=8)
    async with Client(stack.gateway_addr) as client:
        watch = client.watch_stats(interval=1.0)
        await asyncio.wait_for(anext(watch), 10)
        tasks = await client.submit_many([{"capability": "echo", "payload": i} for i in range(40)])
        for task in tasks:
            await client.wait(task.task_id, timeout=30)
        total = 0.0
        async with asyncio.timeout(30):
            async for stats in watch:
                echo = _by_cap(stats).get("echo")
                rate = echo.throughput_per_second if echo else 0.0
                total += rate * 1.0
                if rate == 0 and total > 0:
                    break
    assert round(total) == 40
    assert task_pb2.TASK_STATE_SUCCEEDED
