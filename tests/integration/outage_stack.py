"""A whole stack on port 0 (registry, coordinator, gateway, one SDK agent) over a private
redis-server the test may kill -9, SIGSTOP and restart on the same port and data directory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.agent import Agent, TaskContext
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire_services.common.config import Settings, load_settings
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.gateway.server import GatewayServer
from hivewire_services.registry.server import RegistryServer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class OutageStack:
    redis: EmbeddedRedis
    settings: Settings
    addrs: dict[str, str]
    agent: Agent
    executions: list[str]
    sleeping: asyncio.Event

    def kill_redis(self) -> None:
        self.redis.kill()

    def restart_redis(self) -> None:
        self.redis.start()

    def freeze_redis(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGSTOP)

    def thaw_redis(self) -> None:
        assert self.redis.process is not None
        os.kill(self.redis.process.pid, signal.SIGCONT)

    async def health(self, service: str) -> int:
        async with grpc.aio.insecure_channel(self.addrs[service]) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5.0)
            return int(reply.status)

    async def wait_health(self, status: int, limit: float = 30.0) -> None:
        """Poll every service until each reports `status`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            got = {name: await self.health(name) for name in self.addrs}
            if all(s == status for s in got.values()):
                return
            if loop.time() > deadline:
                raise AssertionError(f"health after {limit}s: {got}, wanted {status}")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def outage_stack(data_dir: Path, namespace: str) -> AsyncIterator[OutageStack]:
    redis = EmbeddedRedis(0, data_dir, appendonly=True, appendfsync="always")
    redis.start()
    settings = load_settings(
        env={},
        redis_url=redis.url,
        namespace=namespace,
        lease_seconds=6.0,
        task_lease_seconds=4.0,
        reclaim_interval=0.2,
        lease_sweep_interval=0.2,
        retry_initial_backoff=0.05,
        retry_max_backoff=0.2,
        scheduler_interval=0.05,
        rpc_timeout=3.0,
        shutdown_grace=1.0,
        redis_probe_interval=0.25,
        redis_probe_timeout=0.5,
    )
    registry = RegistryServer(settings)
    registry_port = await registry.start("127.0.0.1:0")
    settings = dataclasses.replace(settings, registry_addr=f"127.0.0.1:{registry_port}")
    coordinator = CoordinatorServer(settings)
    coordinator_port = await coordinator.start("127.0.0.1:0")
    settings = dataclasses.replace(settings, coordinator_addr=f"127.0.0.1:{coordinator_port}")
    gateway = GatewayServer(settings)
    gateway_port = await gateway.start("127.0.0.1:0")
    executions: list[str] = []
    sleeping = asyncio.Event()
    agent = Agent(
        "outage",
        max_concurrency=4,
        registry_addr=settings.registry_addr,
        redis_url=redis.url,
        rpc_timeout=2.0,
    )

    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> bytes:
        executions.append(ctx.task_id)
        return ctx.payload

    @agent.handler("sleep")
    async def sleep(ctx: TaskContext) -> dict[str, int]:
        executions.append(ctx.task_id)
        sleeping.set()
        await asyncio.sleep(float(ctx.json()["secs"]))
        return {"attempt": ctx.attempt}

    await agent.start()
    stack = OutageStack(
        redis,
        settings,
        {
            "registry": f"127.0.0.1:{registry_port}",
            "coordinator": f"127.0.0.1:{coordinator_port}",
            "gateway": f"127.0.0.1:{gateway_port}",
        },
        agent,
        executions,
        sleeping,
    )
    try:
        yield stack
    finally:
        with contextlib.suppress(Exception):
            stack.thaw_redis()
        if redis.process is None or redis.process.poll() is not None:
            redis.start()
        await agent.stop(grace=2.0)
        await gateway.shutdown()
        await coordinator.shutdown()
        await registry.shutdown()
        redis.stop()
