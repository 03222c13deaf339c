"""The unary SubmitTask path through the gateway: trace ids kept without tracing, and
concurrent calls answered each with its own task."""

from __future__ import annotations

import asyncio

import grpc

from hivewire.client import Client
from hivewire.core import tracing
from hivewire.v1 import gateway_pb2_grpc, task_pb2
from tests.integration.conftest import MakeStack
from tests.integration.stack import Stack


async def test_a_callers_trace_id_reaches_its_task_with_tracing_off(stack: Stack) -> None:
    assert not tracing.recording()
    given = tracing.new_traceparent()
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
        reply = await gateway.SubmitTask(
            task_pb2.SubmitTaskRequest(capability="echo", payload=b"x"),
            metadata=[("traceparent", given)],
            timeout=10,
        )
        plain = await gateway.SubmitTask(
            task_pb2.SubmitTaskRequest(capability="echo", payload=b"y"), timeout=10
        )
    assert reply.task.trace_id == tracing.trace_id_of(given)
    stored = await stack.client.get(reply.task.task_id)
    assert stored.trace_id == tracing.trace_id_of(given)
    # Without trace context a task still gets a trace id of its own.
    assert len(plain.task.trace_id) == 32
    assert plain.task.trace_id != reply.task.trace_id


async def test_the_client_submits_past_its_interceptors_with_the_trace_it_is_in(
    stack: Stack,
) -> None:
    """With no tracer provider the SDK's submits skip the channel interceptors (client/_direct.py)
    and still carry the caller's trace context; without one each submission starts a trace."""
    assert not tracing.provider_records()
    given = tracing.new_traceparent()
    async with Client(stack.gateway_addr) as client:
        token = tracing.attach(tracing.context_of(given))  # type: ignore[arg-type]
        try:
            one = await client.submit("echo", b"x")
            [many] = await client.submit_many([{"capability": "echo", "payload": b"y"}])
        finally:
            tracing.detach(token)
        fresh = await client.submit("echo", b"z")
        # The intercepted channel was never dialled: every call above went the direct way.
        assert client._channel.get_state() == grpc.ChannelConnectivity.IDLE
    assert one.trace_id == many.trace_id == tracing.trace_id_of(given)
    assert len(fresh.trace_id) == 32 and fresh.trace_id != one.trace_id


async def test_concurrent_unary_submits_each_get_their_own_task(stack: Stack) -> None:
    payloads = [f"p{i}".encode() for i in range(40)]
    tasks = await asyncio.gather(*(stack.client.submit("echo", p) for p in payloads))
    assert len({t.task_id for t in tasks}) == len(payloads)
    for task, payload in zip(tasks, payloads, strict=True):
        stored = await stack.client.get(task.task_id)
        assert stored.payload == payload
        assert task.payload == payload


async def test_concurrent_submits_of_one_request_id_get_one_task(stack: Stack) -> None:
    tasks = await asyncio.gather(
        *(stack.client.submit("echo", b"same", request_id="once") for _ in range(8))
    )
    assert len({t.task_id for t in tasks}) == 1


async def test_concurrent_submits_share_calls_and_keep_their_own_traces(stack: Stack) -> None:
    """Submits made while one is in flight go together as one SubmitTasks call
    (client/_submits.py); each task keeps its caller's trace."""
    async with Client(stack.gateway_addr) as client:

        async def submit_in_trace(i: int) -> tuple[str, task_pb2.Task]:
            given = tracing.new_traceparent()
            token = tracing.attach(tracing.context_of(given))  # type: ignore[arg-type]
            try:
                return given, await client.submit("echo", f"p{i}".encode())
            finally:
                tracing.detach(token)

        results = await asyncio.gather(*(submit_in_trace(i) for i in range(30)))
        assert client._submits.batches >= 1  # the first went alone, the rest waited for it
        for i, (given, task) in enumerate(results):
            assert task.trace_id == tracing.trace_id_of(given)
            stored = await client.get(task.task_id)
            assert (stored.payload, stored.trace_id) == (f"p{i}".encode(), task.trace_id)
        untraced = await asyncio.gather(*(client.submit("echo", b"") for _ in range(10)))
        assert len({t.trace_id for t in untraced}) == 10  # each a trace of its own


async def test_a_bad_submit_among_concurrent_ones_fails_alone(stack: Stack) -> None:
    """A refused request in a coalesced call fails its own caller only: nothing of the atomic
    batch was created, so each request was sent again on its own."""
    async with Client(stack.gateway_addr) as client:
        first = asyncio.ensure_future(client.submit("echo", b"first"))
        await asyncio.sleep(0)  # in flight: the next ones wait and go together
        outcomes = await asyncio.gather(
            client.submit("echo", b"good"),
            client.submit("Not A Capability!", b"bad"),
            client.submit("echo", b"limited", rate_limit_units={"no-such-limit": 1}),
            client.submit("echo", b"good2"),
            return_exceptions=True,
        )
        assert (await first).payload == b"first"
        assert client._submits.batches == 1
    good, bad, limited, good2 = outcomes
    assert isinstance(good, task_pb2.Task) and good.payload == b"good"
    assert isinstance(good2, task_pb2.Task) and good2.payload == b"good2"
    assert isinstance(bad, grpc.aio.AioRpcError)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "capability" in (bad.details() or "")
    assert isinstance(limited, grpc.aio.AioRpcError)
    assert limited.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no-such-limit" in (limited.details() or "")


async def test_a_submit_given_up_while_it_waits_is_never_sent(stack: Stack) -> None:
    async with Client(stack.gateway_addr) as client:
        first = asyncio.ensure_future(client.submit("echo", b"first"))
        await asyncio.sleep(0)
        waiting = asyncio.ensure_future(client.submit("echo", b"given-up"))
        await asyncio.sleep(0)
        waiting.cancel()
        await first
        after = await client.submit("echo", b"after")  # the client goes on as before
        assert after.payload == b"after"
        assert client._submits.batches == 0
        payloads = {t.payload async for t in client.iter_tasks(capability="echo")}
    assert b"given-up" not in payloads and {b"first", b"after"} <= payloads


async def test_coalesced_submits_fit_a_gateway_with_a_smaller_batch_limit(
    make_stack: MakeStack,
) -> None:
    """A batch over the server's HIVEWIRE_MAX_BATCH is refused whole (RESOURCE_EXHAUSTED), so
    its requests go again one by one, and the gateway sends those on in batches it allows."""
    small = await make_stack(max_batch=3)
    async with Client(small.gateway_addr) as client:
        tasks = await asyncio.gather(*(client.submit("echo", b"%d" % i) for i in range(12)))
        assert client._submits.batches >= 1
    assert [t.payload for t in tasks] == [b"%d" % i for i in range(12)]
    assert small.gateway is not None and small.gateway.submits.batches >= 1
