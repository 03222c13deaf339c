"""The in-process stack (registry, coordinator, gateway, one SDK agent) over a private
redis-server the test may kill -9, SIGSTOP and restart on the same port and data directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from grpc_health.v1 import health_pb2

from hivewire.agent import Agent, TaskContext
from hivewire.cli.embedded_redis import EmbeddedRedis
from tests.integration.stack import running_stack
from tests.settings import StackSettings, stack_settings
from tests.waiting import health, health_reaches

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class OutageStack:
    redis: EmbeddedRedis
    settings: StackSettings
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
        return await health(self.addrs[service])

    async def wait_health(self, status: int, limit: float = 30.0) -> None:
        """Until every service reports `status`."""
        await health_reaches(self.addrs, status, limit)


@contextlib.asynccontextmanager
async def outage_stack(data_dir: Path, namespace: str) -> AsyncIterator[OutageStack]:
    redis = EmbeddedRedis(0, data_dir, appendonly=True, appendfsync="always")
    redis.start()
    settings = stack_settings(
        redis_url=redis.url,
        namespace=namespace,
        lease_seconds=6.0,
        task_lease_seconds=4.0,
        retry_initial_backoff=0.05,
        retry_max_backoff=0.2,
        rpc_timeout=3.0,
        shutdown_grace=1.0,
        redis_probe_interval=0.25,
        redis_probe_timeout=0.5,
    )
    try:
        async with running_stack(settings, shutdown_grace=1.0) as running:
            executions: list[str] = []
            sleeping = asyncio.Event()

            async def echo(ctx: TaskContext) -> bytes:
                executions.append(ctx.task_id)
                return ctx.payload

            async def sleep(ctx: TaskContext) -> dict[str, int]:
                executions.append(ctx.task_id)
                sleeping.set()
                await asyncio.sleep(float(ctx.json()["secs"]))  # the work: as long as asked
                return {"attempt": ctx.attempt}

            handlers = {"echo": echo, "sleep": sleep}
            agent = await running.agent("outage", handlers, max_concurrency=4, rpc_timeout=2.0)
            stack = OutageStack(
                redis, running.settings, running.addrs(), agent, executions, sleeping
            )
            try:
                yield stack
            finally:  # Redis back before the stack stops, so everything stops cleanly
                with contextlib.suppress(Exception):
                    stack.thaw_redis()
                if redis.process is None or redis.process.poll() is not None:
                    redis.start()
    finally:
        redis.stop()
