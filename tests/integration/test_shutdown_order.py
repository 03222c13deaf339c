"""ServiceProcess.shutdown on a real server at port 0: STYLE rule 4's order, once only."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire_services.common.process import ServiceProcess
from hivewire_services.registry.config import RegistrySettings
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings


async def health(port: int) -> str:
    """The overall health status name at `port`, or the code of the failed Check."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2.0)
        except grpc.aio.AioRpcError as exc:
            return str(exc.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


class Probe(ServiceProcess[RegistrySettings]):
    """A server whose loop, stop callback, release hook, channel and Redis record when they end."""

    name = "probe"

    def __init__(self, settings: RegistrySettings) -> None:
        super().__init__(settings)
        self.events: list[str] = []

    async def _start(self, listen: str) -> int:
        server = await self.owned.serve(listen, lambda s: None, ["test.Probe"])
        self.owned.spawn(self._loop(), "probe-loop")
        self.owned.on_stop(self._stop_reading)
        channel = self.owned.channel(f"127.0.0.1:{server.port}")
        close_channel, close_redis = channel.close, self.redis.aclose

        async def closing_channel(grace: float | None = None) -> None:
            self.events.append("channel closed")
            await close_channel(grace)

        async def closing_redis(close_connection_pool: bool | None = None) -> None:
            self.events.append("redis closed")
            await close_redis(close_connection_pool)

        channel.close = closing_channel  # type: ignore[method-assign]
        self.redis.aclose = closing_redis  # type: ignore[method-assign]
        return server.port

    async def _loop(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.events.append("loop cancelled")
            raise

    async def _stop_reading(self) -> None:
        self.events.append(f"stop reading: {await health(self.port)}")

    async def _release(self) -> None:
        pong = await self.redis.ping()
        self.events.append(f"release: {await health(self.port)}, redis ping {pong}")


async def test_shutdown_is_ordered_and_idempotent(
    settings: StackSettings, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe(settings.registry())
    port = await probe.start("127.0.0.1:0")
    assert await health(port) == "SERVING"
    caplog.set_level(logging.INFO)

    await probe.shutdown()
    assert probe.events == [
        "loop cancelled",
        "stop reading: NOT_SERVING",  # still accepting RPCs, reporting NOT_SERVING
        "release: UNAVAILABLE, redis ping True",  # server stopped, Redis still open
        "channel closed",
        "redis closed",
    ]
    await probe.shutdown()
    assert len(probe.events) == 5
    assert [r.getMessage() for r in caplog.records].count("probe stopped") == 1


@pytest.fixture
def on_port_0(settings: StackSettings) -> RegistrySettings:
    """Registry settings that make `async with` listen on port 0."""
    return dataclasses.replace(settings.registry(), registry_listen="127.0.0.1:0")


async def test_async_with_shuts_down_a_real_service_once(
    on_port_0: RegistrySettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with RegistryServer(on_port_0) as registry:
        assert await health(registry.port) == "SERVING"
        await registry.shutdown()
        assert await health(registry.port) == "UNAVAILABLE"
    assert [r.getMessage() for r in caplog.records].count("registry stopped") == 1


async def test_a_start_that_fails_half_way_stops_what_it_started(
    on_port_0: RegistrySettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with RegistryServer(on_port_0) as first:
        second = RegistryServer(on_port_0)
        with pytest.raises(RuntimeError, match="Failed to bind"):
            await second.start(f"127.0.0.1:{first.port}")  # the hub and sweeper had started
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert names.count("registry-lease-sweeper") == 1  # the first registry's
        assert second.owned.closed
        with pytest.raises(RuntimeError, match="registry is not started"):
            _ = second.port
    assert "registry-lease-sweeper" not in [t.get_name() for t in asyncio.all_tasks()]
    assert [r.getMessage() for r in caplog.records].count("registry stopped") == 2
