"""Per-caller limits on a real gateway: a client over its stream cap or its rate is refused with
RESOURCE_EXHAUSTED and RetryInfo while health keeps answering; the SDK waits out RetryInfo on
idempotent calls."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from hivewire.client import Client
from hivewire.v1 import agent_pb2, event_pb2, gateway_pb2_grpc
from hivewire_services.common.errors import error_info, retry_delay
from tests.integration.conftest import MakeStack
from tests.waiting import eventually

CAP = 3
SERVING = health_pb2.HealthCheckResponse.SERVING


def refusal(exc: grpc.aio.AioRpcError) -> tuple[str, float]:
    """The ErrorInfo reason and RetryInfo delay of a RESOURCE_EXHAUSTED."""
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
    status = rpc_status.from_call(exc)
    assert status is not None
    info, delay = error_info(status), retry_delay(status)
    assert info is not None and delay is not None
    return info.reason, delay


async def test_a_client_over_its_stream_cap_is_refused_while_health_and_calls_work(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(gateway=False)
    await stack.start_gateway(max_streams_per_principal=CAP)
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        streams = [
            stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=60) for _ in range(CAP)
        ]
        await eventually(lambda: stack.subscribers() == CAP, message="the streams open")
        extra = stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await extra.read()
        reason, delay = refusal(refused.value)
        assert reason == "STREAM_LIMIT" and delay > 0
        assert stack.subscribers() == CAP
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == SERVING
        await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
        streams[0].cancel()
        await eventually(lambda: stack.subscribers() == CAP - 1, message="one stream closed")

        async def reopened() -> bool:
            again = stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=60)
            streams.append(again)
            try:
                await eventually(lambda: stack.subscribers() == CAP, within=2)
            except AssertionError:
                again.cancel()  # refused: the server has not released the slot yet
                return False
            return True

        await eventually(reopened, message="a closed stream frees its place")
        for stream in streams:
            stream.cancel()


async def test_a_client_over_its_rate_is_refused_and_the_sdk_waits_it_out(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(gateway=False)
    await stack.start_gateway(gateway_rate_limit_rps=5.0, gateway_rate_limit_burst=2)
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        refused: grpc.aio.AioRpcError | None = None
        for _ in range(4):  # a burst of 2, then refusals (5 tokens a second come back)
            try:
                await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
            except grpc.aio.AioRpcError as exc:
                refused = exc
                break
        assert refused is not None
        reason, delay = refusal(refused)
        assert reason == "RATE_LIMITED" and 0 < delay <= 0.2 + 1e-6
        for _ in range(5):  # health is never rate limited
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == SERVING
    client = Client(stack.gateway_addr, timeout=5.0)
    try:
        # Ten reads at 5/s with a burst of 2: most are refused once and retried as told.
        for _ in range(10):
            agents, _token = await client.list_agents()
            assert agents == []
    finally:
        await client.close()
