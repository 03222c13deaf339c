"""Redis at its limits: an evicting maxmemory-policy is refused at start, a full Redis and a full
connection pool answer RESOURCE_EXHAUSTED (never INTERNAL) and are not taken for an outage."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.client import Client
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2
from hivewire_services.common.process import EXIT_REDIS_REFUSED
from hivewire_services.common.redis import PoolExhausted, create_redis
from hivewire_services.coordinator.server import CoordinatorServer
from tests.integration.stack import LOOPBACK_ANY, SERVING, running_stack
from tests.integration.test_redis_outage import reason
from tests.settings import StackSettings, stack_settings
from tests.waiting import eventually, health

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(
        0, tmp_path / "redis", appendonly=False, extra=("--maxmemory-policy", "allkeys-lru")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of the test's own, whose memory limit the test may change."""
    server = EmbeddedRedis(0, tmp_path / "redis", appendonly=False)
    server.start()
    yield server
    server.stop()


async def run_registry(redis_url: str, tmp_path: Path) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "HIVEWIRE_REDIS_URL": redis_url,
        "HIVEWIRE_REGISTRY_ADDR": LOOPBACK_ANY,
        "HIVEWIRE_ADDR_FILE": str(tmp_path / "registry.addr"),
        "HIVEWIRE_REDIS_PROBE_INTERVAL": "0.1",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire_services.registry",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def test_a_service_refuses_to_start_on_an_evicting_redis(
    evicting_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    admin = create_redis(evicting_redis.url)
    await admin.acl_setuser(
        "someone", enabled=True, passwords=["+s3cret-pw"], keys=["*"], commands=["+@all"]
    )
    await admin.aclose()
    url = evicting_redis.url.replace("redis://", "redis://someone:s3cret-pw@")
    proc = await run_registry(url, tmp_path)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == EXIT_REDIS_REFUSED, text
    assert "maxmemory-policy allkeys-lru" in text
    assert "needs noeviction" in text
    assert "redis://someone:***@127.0.0.1" in text
    assert "s3cret-pw" not in text
    assert "Traceback" not in text
    assert not (tmp_path / "registry.addr").exists()


async def test_a_service_started_before_redis_stops_once_it_finds_an_evicting_one(
    evicting_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    evicting_redis.stop()
    proc = await run_registry(evicting_redis.url, tmp_path)
    try:
        await eventually(
            lambda: (tmp_path / "registry.addr").exists(), message="the registry started"
        )
        evicting_redis.start()
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == EXIT_REDIS_REFUSED
    assert "maxmemory-policy allkeys-lru" in out.decode()


@pytest.fixture
def limited_settings(private_redis: EmbeddedRedis, namespace: str) -> StackSettings:
    return stack_settings(redis_url=private_redis.url, namespace=namespace, rpc_timeout=5.0)


async def test_a_full_redis_answers_resource_exhausted_and_is_no_outage(
    private_redis: EmbeddedRedis, limited_settings: StackSettings
) -> None:
    admin = create_redis(private_redis.url)
    async with running_stack(limited_settings) as stack:
        client = Client(stack.gateway_addr, timeout=10.0)
        try:
            await client.submit("echo", {"n": 0})
            await admin.config_set("maxmemory", "1")  # far below what Redis holds already
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await client.submit("echo", {"n": 1})
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason(caught.value) == "REDIS_OUT_OF_MEMORY"
            assert "out of memory" in (caught.value.details() or "")
            for addr in stack.addrs().values():
                assert await health(addr) == SERVING
            assert stack.coordinator is not None and stack.coordinator.owned.grpc is not None
            assert stack.coordinator.owned.grpc.redis_gate is not None
            assert stack.coordinator.owned.grpc.redis_gate.trips == 0
            await admin.config_set("maxmemory", "0")
            task = await client.submit("echo", {"n": 2})
            assert task.state == task_pb2.TASK_STATE_PENDING
        finally:
            await admin.config_set("maxmemory", "0")
            await client.close()
            await admin.aclose()


@pytest.fixture
async def small_pool_coordinator(
    limited_settings: StackSettings,
) -> AsyncIterator[tuple[CoordinatorServer, int]]:
    async with running_stack(limited_settings, coordinator=False, gateway=False) as stack:
        settings = stack.settings.coordinator()
        pool_redis = create_redis(settings.redis_url, socket_timeout=0.3, max_connections=4)
        coordinator = CoordinatorServer(settings, redis=pool_redis)
        port = await coordinator.start(LOOPBACK_ANY)
        try:
            yield coordinator, port
        finally:
            await coordinator.shutdown()
            await pool_redis.aclose()


async def test_an_exhausted_pool_answers_resource_exhausted_and_is_no_outage(
    small_pool_coordinator: tuple[CoordinatorServer, int],
) -> None:
    coordinator, port = small_pool_coordinator
    pool = coordinator.redis.connection_pool
    held = []

    async def hold_all() -> bool:
        with contextlib.suppress(PoolExhausted):
            held.append(await pool.get_connection())
        return len(held) == pool.max_connections  # type: ignore[attr-defined]

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        request = coordinator_pb2.CoordinatorServiceSubmitTaskRequest(
            request=task_pb2.SubmitTaskRequest(capability="echo", payload=b"{}")
        )
        try:
            await eventually(hold_all, message="every pooled connection held by the test")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SubmitTask(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert reason(caught.value) == "REDIS_POOL_EXHAUSTED"
            assert await health(f"127.0.0.1:{port}") == SERVING
            assert coordinator.owned.grpc is not None
            assert coordinator.owned.grpc.redis_gate is not None
            assert coordinator.owned.grpc.redis_gate.trips == 0
        finally:
            for conn in held:
                await pool.release(conn)
        reply = await stub.SubmitTask(request, timeout=10)
        assert reply.response.task.state == task_pb2.TASK_STATE_PENDING
