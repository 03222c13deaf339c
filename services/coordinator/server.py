"""Coordinator wiring: gRPC server, registry watch, scheduler, results consumer, retention."""

from __future__ import annotations

import asyncio
import logging
import uuid

from hivewire.core import tracing
from hivewire.core.clock import now_ms
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.process import ServiceProcess, serve
from hivewire_services.common.redis import Redis
from hivewire_services.common.redis_metrics import ServiceMetrics
from hivewire_services.coordinator.config import CoordinatorSettings, load_coordinator_settings
from hivewire_services.coordinator.schedules.firing import ScheduleFiring
from hivewire_services.coordinator.schedules.store import ScheduleStore
from hivewire_services.coordinator.service import CoordinatorService
from hivewire_services.coordinator.tasks.agent_cache import AgentCache
from hivewire_services.coordinator.tasks.eager import EagerDispatch
from hivewire_services.coordinator.tasks.ended_parents import EndedParents
from hivewire_services.coordinator.tasks.metrics_feed import MetricsFeed
from hivewire_services.coordinator.tasks.queues import Queues
from hivewire_services.coordinator.tasks.reclaim import Reclaimer
from hivewire_services.coordinator.tasks.results import ResultsConsumer
from hivewire_services.coordinator.tasks.scheduler import Scheduler
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.tasks.trimmer import StreamTrimmer
from hivewire_services.coordinator.workflows.engine import WorkflowEngine

logger = logging.getLogger(__name__)

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["CoordinatorService"].full_name
RETENTION_EVERY_S = 30.0


class CoordinatorServer(ServiceProcess[CoordinatorSettings]):
    """One coordinator process. Several may run at once: all state lives in Redis."""

    name = "coordinator"
    metrics: ServiceMetrics

    def __init__(self, settings: CoordinatorSettings, redis: Redis | None = None) -> None:
        super().__init__(settings, redis)
        self.keys = Keys(settings.namespace)
        self.instance = uuid.uuid4().hex[:12]
        self.store = TaskStore(
            self.redis, self.keys, settings, on_deadline=self._deadline, on_submitted=self._wake
        )
        self.scheduler: Scheduler | None = None
        self.results: ResultsConsumer | None = None
        self.workflows = WorkflowEngine(
            self.redis, self.keys, settings, self.store, f"coordinator-{self.instance}", self._wake
        )
        self.reclaimer: Reclaimer | None = None
        self.schedules = ScheduleFiring(
            ScheduleStore(self.redis, self.keys, settings, on_change=self._schedule_changed),
            self.store,
            self.workflows,
        )
        self.metrics = ServiceMetrics(
            settings.redis_url,
            self.keys,
            settings.coordinator_metrics_port,
            settings.metrics_host,
            ("tasks", "queues", "streams"),
        )

    async def _start(self, listen: str) -> int:
        cache = AgentCache(
            self.owned.channel(self.settings.registry_addr),
            on_change=self._wake,
            on_removed=self._agent_gone,
        )
        self.scheduler = Scheduler(
            self.redis, self.keys, self.settings, cache, on_deadline=self._deadline
        )
        if self.settings.eager_dispatch:
            self.store.eager = EagerDispatch(self.scheduler)
        self.results = ResultsConsumer(
            self.redis, self.keys, self.settings, f"coordinator-{self.instance}", self._wake
        )
        self.reclaimer = Reclaimer(
            self.redis,
            self.keys,
            self.settings,
            f"reclaimer-{self.instance}",
            self._wake,
            probe_recovered_ms=self.redis_recovered_ms,
        )
        service = CoordinatorService(self.store, self.settings, on_retried=self._wake)
        service.workflows = self.workflows
        service.schedules = self.schedules
        service.queues = Queues(
            self.redis, self.keys, self.settings, cache.capabilities, self._wake
        )
        server = await self.owned.serve(
            listen,
            lambda s: coordinator_pb2_grpc.add_CoordinatorServiceServicer_to_server(service, s),
            [SERVICE_NAME],
        )
        spawn = self.owned.spawn
        spawn(cache.run(), "agent-cache")
        spawn(self.scheduler.run(), "scheduler")
        spawn(self.results.run(), "results")
        ended = EndedParents(
            self.redis,
            self.keys,
            f"coordinator-{self.instance}",
            service.children,
            self.settings.results_claim_idle,
        )
        spawn(ended.run(), "ended-parents")
        spawn(self._retention(), "retention")
        spawn(self.workflows.run(), "workflows")
        spawn(self.workflows.timers.run(), "workflow-timers")
        spawn(self.reclaimer.run(), "reclaimer")
        spawn(self.schedules.run(), "schedules")
        spawn(StreamTrimmer(self.redis, self.keys, self.settings).run(), "trimmer")
        self.owned.on_stop(self.metrics.close)
        if self.metrics.start() or tracing.recording():
            feed = MetricsFeed(self.redis, self.keys, f"coordinator-{self.instance}")
            spawn(feed.run(), "metrics-feed")
        logger.info("coordinator %s listening on port %d", self.instance, server.port)
        return server.port

    def _wake(self) -> None:
        if self.scheduler is not None:
            self.scheduler.wake()

    def _schedule_changed(self) -> None:
        self.schedules.wake()

    def _deadline(self, due_ms: int) -> None:
        """A lease or deadline created here: the reclaimer wakes for it if it is the first."""
        if self.reclaimer is not None:
            self.reclaimer.due_at(due_ms)

    def _agent_gone(self) -> None:
        """An agent went offline (or the agent view was rebuilt): reclaim its inbox now."""
        if self.reclaimer is not None:
            self.reclaimer.wake()

    async def _retention(self) -> None:
        """Delete terminal tasks older than the retention period, a bounded batch at a time
        (with their output streams), every 30 s or twice per retention period if shorter."""
        backoff = Backoff()
        every = min(RETENTION_EVERY_S, max(0.1, self.settings.task_retention_seconds / 2))
        while True:
            await asyncio.sleep(every)
            try:
                cutoff = now_ms() - int(self.settings.task_retention_seconds * 1000)
                while await self.store.expire(cutoff):
                    pass
                backoff.reset()
            except Exception as exc:
                await backoff.failed("retention", exc)


def main() -> None:
    serve("coordinator", CoordinatorServer, load_coordinator_settings())
