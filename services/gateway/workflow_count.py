"""The stats collector of a gateway, counting running workflows through the coordinator."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import grpc

from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, workflow_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.events.hub import EventsHub
from hivewire_services.gateway.stats.collector import StatsCollector
from hivewire_services.gateway.upstream import forward

logger = logging.getLogger(__name__)


def stats_for(
    hub: EventsHub,
    settings: GatewaySettings,
    coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub,
) -> StatsCollector:
    """A collector fed by `hub` that counts workflows through `coordinator`."""
    stats = StatsCollector(
        hub.redis,
        Keys(settings.namespace),
        lambda: hub.subscriber_count,
        WorkflowCount(coordinator, settings.rpc_timeout),
    )
    hub.add_listener(stats.observe)
    return stats


@dataclass
class WorkflowCount:
    """Workflows RUNNING, counted through the coordinator's ListWorkflows (cached a while).

    Answers 0 while the coordinator does not implement workflows (UNIMPLEMENTED) or fails.
    """

    coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub
    timeout: float
    ttl: float = 2.0
    max_pages: int = 10
    _value: int = field(default=0, init=False)
    _at: float = field(default=float("-inf"), init=False)
    _last_error: grpc.StatusCode | None = field(default=None, init=False)

    async def __call__(self) -> int:
        if time.monotonic() - self._at < self.ttl:
            return self._value
        self._at = time.monotonic()
        count, token = 0, ""
        try:
            for _ in range(self.max_pages):
                page: workflow_pb2.ListWorkflowsResponse = await forward(
                    self.coordinator.ListWorkflows,
                    coordinator_pb2.CoordinatorServiceListWorkflowsRequest(
                        request=workflow_pb2.ListWorkflowsRequest(
                            page_size=1000,
                            page_token=token,
                            state=workflow_pb2.WORKFLOW_STATE_RUNNING,
                        )
                    ),
                    self.timeout,
                )
                count += len(page.workflows)
                token = page.next_page_token
                if not token:
                    break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != self._last_error:  # log a change, not every failed poll
                logger.info("stats: workflows not counted (ListWorkflows %s)", exc.code().name)
            self._last_error = exc.code()
            return self._value
        self._last_error = None
        self._value = count
        return count
