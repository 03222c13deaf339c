"""Load shedding on real servers: past HIVEWIRE_MAX_CONCURRENT_STREAMS / _RPCS calls get
RESOURCE_EXHAUSTED with a RetryInfo at once, health still answers SERVING, and calls are served
again when the RPCs holding the slots end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from hivewire.v1 import agent_pb2, event_pb2, gateway_pb2_grpc, stats_pb2
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.errors import error_info, retry_delay
from hivewire_services.common.server import GrpcServer, check_transport, create_server
from tests.integration.conftest import MakeStack
from tests.waiting import eventually

LIMIT = 4
SERVING = health_pb2.HealthCheckResponse.SERVING


def assert_shed(exc: grpc.aio.AioRpcError) -> None:
    """RESOURCE_EXHAUSTED with reason CONCURRENCY_LIMIT and a positive RetryInfo."""
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
    status = rpc_status.from_call(exc)
    assert status is not None
    info = error_info(status)
    assert info is not None and info.reason == "CONCURRENCY_LIMIT"
    delay = retry_delay(status)
    assert delay is not None and delay > 0


async def test_streams_past_their_bound_are_refused_not_health_nor_unary(
    make_stack: MakeStack,
) -> None:
    stack = await make_stack(gateway=False)
    await stack.start_gateway(max_concurrent_streams=LIMIT, max_concurrent_rpcs=LIMIT)
    async with grpc.aio.insecure_channel(stack.gateway_addr) as channel:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)

        async def stream_opens() -> bool:
            call = stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=10)
            try:
                await call.wait_for_connection()
                await eventually(lambda: stack.subscribers() == 1, message="subscribed")
                return True
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                return False
            finally:
                call.cancel()

        # Long-lived streams hold their slots: three StreamEvents and one WatchStats.
        events = [stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=60) for _ in range(3)]
        stats = stub.WatchStats(stats_pb2.WatchStatsRequest(), timeout=60)
        await stats.read()  # its first frame: the stream is running
        await eventually(lambda: stack.subscribers() == 3, message="the event streams open")
        for _ in range(3):  # every stream past the bound, not only the first
            extra = stub.StreamEvents(event_pb2.StreamEventsRequest(), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await extra.read()
            assert_shed(refused.value)
        assert stack.subscribers() == 3  # nothing refused got in
        # Health and unary calls have slots of their own.
        for _ in range(2 * LIMIT):
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == SERVING
        await stub.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5)
        for stream in [*events, stats]:
            stream.cancel()
        await eventually(lambda: stack.subscribers() == 0, message="the event streams closed")
        await eventually(stream_opens, message="a stream served again")


async def _serve_blocking(release: asyncio.Event, limit: int) -> GrpcServer:
    """A real server whose one unary method waits for `release` and whose stream yields once
    and waits too; health and the limiter as every service has them."""

    async def block(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        await release.wait()
        return request

    async def follow(
        request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        yield request
        await release.wait()

    def register(server: grpc.aio.Server) -> None:
        handlers = {
            "Block": grpc.unary_unary_rpc_method_handler(block),
            "Follow": grpc.unary_stream_rpc_method_handler(follow),
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("test.Slow", handlers),)
        )

    settings = CommonSettings(max_concurrent_rpcs=limit, max_concurrent_streams=limit)
    return await create_server("127.0.0.1:0", register, ["test.Slow"], settings, watch_redis=False)


async def test_blocked_unary_calls_saturate_only_unary_slots() -> None:
    release = asyncio.Event()
    server = await _serve_blocking(release, LIMIT)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            block = channel.unary_unary("/test.Slow/Block")
            follow = channel.unary_stream("/test.Slow/Follow")
            health = health_pb2_grpc.HealthStub(channel)
            pending = [asyncio.ensure_future(block(b"x", timeout=30)) for _ in range(LIMIT)]
            # Each blocked call holds its slot once the handler runs.
            await eventually(
                lambda: server_inflight(server) == LIMIT, message="all unary slots taken"
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await block(b"y", timeout=5)
            assert_shed(refused.value)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == SERVING
            stream = follow(b"s", timeout=30)
            assert await stream.read() == b"s"  # a stream still opens
            release.set()
            assert await asyncio.gather(*pending) == [b"x"] * LIMIT
            assert await block(b"z", timeout=5) == b"z"  # slots came back
            stream.cancel()
    finally:
        await server.stop(0)


def server_inflight(server: GrpcServer) -> int:
    """Unary calls the server's limiter counts in flight."""
    assert server.inflight is not None
    return server.inflight.unary.value


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="HIVEWIRE_MAX_CONCURRENT_RPCS=0 must be at least 1"):
        check_transport("127.0.0.1:0", CommonSettings(max_concurrent_rpcs=0))
    with pytest.raises(ValueError, match="HIVEWIRE_MAX_CONCURRENT_STREAMS=0 must be at least 1"):
        check_transport("127.0.0.1:0", CommonSettings(max_concurrent_streams=0))
    check_transport("127.0.0.1:0", CommonSettings())  # the default passes
