"""The unary SubmitTask path through the gateway: trace ids kept without tracing, and
concurrent calls answered each with its own task."""

from __future__ import annotations

import asyncio

import grpc

from hivewire.client import Client
from hivewire.core import tracing
from hivewire.v1 import gateway_pb2_grpc, task_pb2
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
