"""Coordinator wiring: gRPC server, registry watch, scheduler, results consumer, retention."""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc

from hivewire.core import tracing
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc
from hivewire_services.common.clock import now_ms
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff, cancel_and_wait
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis, create_redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.common.server import GrpcServer, create_channel, create_server
from hivewire_services.coordinator.config import CoordinatorSettings, load_coordinator_settings
from hivewire_services.coordinator.service import CoordinatorService
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.metrics_feed import MetricsFeed
from hivewire_services.coordinator.tasks.reclaim import Reclaimer
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.tasks.trimmer import StreamTrimmer
from hivewire_services.coordinator.workflows.engine import WorkflowEngine

logger = logging.getLogger(__name__)

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].full_name
RETENTION_EVERY_S = 30.0


class CoordinatorServer(ServiceProcess):
    """One coordinator process. Several may run at once: all state lives in Redis."""

    def __init__(self, settings: CoordinatorSettings, redis: Redis | None = None) -> None:
        self.settings = settings
        self.keys = Keys(settings.namespace)
        self._own_redis = redis is None
        self.redis = redis or create_redis(settings.redis_url)
        self.instance = uuid.uuid4().hex[:12]
        self.registry_channel: grpc.aio.Channel | None = None
        self.grpc: GrpcServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False
        self.store = TaskStore(self.redis, self.keys, settings)
        self.scheduler: Scheduler | None = None
        self.results: ResultsConsumer | None = None
        self.workflows = WorkflowEngine(
            self.redis, self.keys, settings, self.store, f"coordinator-{self.instance}", self._wake
        )
        self.reclaimer: Reclaimer | None = None
        self.metrics = ServiceMetrics(
            settings.redis_url,
            self.keys,
            settings.coordinator_metrics_port,
            settings.metrics_host,
            ("tasks", "queues", "streams"),
        )

    async def start(self, listen: str | None = None) -> int:
        self.registry_channel = create_channel(self.settings.registry_addr, self.settings)
        cache = AgentCache(self.registry_channel, on_change=lambda: self._wake())
        self.scheduler = Scheduler(self.redis, self.keys, self.settings, cache)
        self.results = ResultsConsumer(
            self.redis, self.keys, self.settings, f"coordinator-{self.instance}", self._wake
        )
        self.reclaimer = Reclaimer(
            self.redis, self.keys, self.settings, f"reclaimer-{self.instance}", self._wake
        )
        service = CoordinatorService(self.store, self.settings, on_submit=self._wake)
        service.workflows = self.workflows
        self.grpc = await create_server(
            listen or self.settings.listen_address,
            lambda s: coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(service, s),
            [SERVICE_NAME],
            self.settings,
        )
        self._tasks = [
            asyncio.create_task(cache.run(), name="agent-cache"),
            asyncio.create_task(self.scheduler.run(), name="scheduler"),
            asyncio.create_task(self.results.run(), name="results"),
            asyncio.create_task(self._retention(), name="retention"),
            asyncio.create_task(self.workflows.run(), name="workflows"),
            asyncio.create_task(self.reclaimer.run(), name="reclaimer"),
            asyncio.create_task(
                StreamTrimmer(self.redis, self.keys, self.settings).run(), name="trimmer"
            ),
        ]
        if self.metrics.start() or tracing.recording():
            feed = MetricsFeed(self.redis, self.keys, f"coordinator-{self.instance}")
            self._tasks.append(asyncio.create_task(feed.run(), name="metrics-feed"))
        logger.info("coordinator %s listening on port %d", self.instance, self.grpc.port)
        return self.grpc.port

    def _wake(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    async def _retention(self) -> None:
        """Delete terminal tasks older than the retention period, a bounded batch at a time."""
        backoff = Backoff()
        while True:
            await asyncio.sleep(RETENTION_EVERY_S)
            try:
                cutoff = now_ms() - int(self.settings.task_retention_seconds * 1000)
                while await self.store.expire(cutoff):
                    pass
                backoff.reset()
            except Exception as exc:
                await backoff.failed("retention", exc)

    async def shutdown(self) -> None:
        """Ordered and idempotent: NOT_SERVING, stop loops, drain RPCs, close channel and Redis."""
        if self._stopped:
            return
        self._stopped = True
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        await cancel_and_wait(self._tasks)
        self.metrics.close()
        if self.grpc is not None:
            await self.grpc.stop(self.settings.shutdown_grace)
        if self.registry_channel is not None:
            await self.registry_channel.close()
        if self._own_redis:
            await self.redis.aclose()


def main() -> None:
    serve("coordinator", CoordinatorServer, load_coordinator_settings())
