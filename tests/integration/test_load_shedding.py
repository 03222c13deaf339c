"""Load shedding on a real gateway: past HIVEWIRE_MAX_CONCURRENT_RPCS calls get
RESOURCE_EXHAUSTED at once, and are served again when the RPCs holding the slots end."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.v1 import agent_pb2, event_pb2, gateway_pb2_grpc, stats_pb2
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.server import check_transport
from tests.integration.conftest import MakeStack
from tests.waiting import eventually

LIMIT = 4


async def test_calls_past_the_limit_are_refused_until_streams_close(make_stack: MakeStack) -> None:
    stack = await make_stack(gateway=False)
    await stack.start_gateway(max_concurrent_rpcs=LIMIT)
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        async def list_agents() -> bool:
            await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
            return True

        async def served_again() -> bool:
            try:
                return await list_agents()
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                return False

        assert await list_agents()  # below the limit
        # Long-lived streams hold their slots: three StreamEvents and one WatchStats.
        events = [stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=60) for _ in range(3)]
        stats = stub.WatchStats(stats_pb2.WatchStatsRequest(), timeout=60)
        await stats.read()  # its first frame: the stream is running
        await eventually(lambda: stack.subscribers() == 3, message="the event streams open")
        for _ in range(3):  # every call past the limit, not only the first
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await list_agents()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Health checks share the limit: a saturated server says so rather than SERVING.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert stack.subscribers() == 3  # nothing refused got in
        for stream in [*events, stats]:
            stream.cancel()
        await eventually(lambda: stack.subscribers() == 0, message="the event streams closed")
        # The slots come back as the cancelled RPCs finish on the server.
        await eventually(served_again, message="ListAgents served again")
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="HIVEWIRE_MAX_CONCURRENT_RPCS=0 must be at least 1"):
        check_transport("127.0.0.1:0", CommonSettings(max_concurrent_rpcs=0))
    check_transport("127.0.0.1:0", CommonSettings())  # the default passes
