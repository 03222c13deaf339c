"""The GatewayService servicer: check at the edge, forward to the coordinator/registry, stream."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from hivewire.v1 import (
    agent_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    gateway_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    task_pb2,
)
from hivewire_services.common.validation import check_id
from hivewire_services.gateway import checks
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.dead_letter_rpcs import GatewayDeadLetterRpcs
from hivewire_services.gateway.events.hub import EventsHub
from hivewire_services.gateway.stream_rpcs import StreamRpcs, stats_for
from hivewire_services.gateway.upstream import forward
from hivewire_services.gateway.workflow_rpcs import WorkflowRpcs

logger = logging.getLogger(__name__)


class GatewayServicer(
    WorkflowRpcs, GatewayDeadLetterRpcs, StreamRpcs, gateway_pb2_grpc.GatewayServiceServicer
):
    """Thin: every request is checked here, then forwarded with a deadline or served from the hub.

    Errors from the coordinator or registry propagate as AioRpcError; the error interceptor passes
    their code and rich details through unchanged.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub,
        registry: registry_pb2_grpc.RegistryServiceAsyncStub,
        hub: EventsHub,
    ) -> None:
        self._settings = settings
        self._coordinator = coordinator
        self._registry = registry
        self._hub = hub
        self._timeout = settings.rpc_timeout
        self._stats = stats_for(hub, settings, coordinator)

    async def SubmitTask(
        self, request: task_pb2.SubmitTaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> task_pb2.SubmitTaskResponse:
        checks.check_submit(request, self._settings)
        return await forward(
            self._coordinator.SubmitTask,
            coordinator_pb2.CoordinatorServiceSubmitTaskRequest(request=request),
            self._timeout,
        )

    async def SubmitTasks(
        self, request: task_pb2.SubmitTasksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> task_pb2.SubmitTasksResponse:
        checks.check_batch(request.tasks, self._settings)
        return await forward(
            self._coordinator.SubmitTasks,
            coordinator_pb2.CoordinatorServiceSubmitTasksRequest(request=request),
            self._timeout,
        )

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> task_pb2.GetTaskResponse:
        check_id(request.task_id, "task_id")
        return await forward(
            self._coordinator.GetTask,
            coordinator_pb2.CoordinatorServiceGetTaskRequest(request=request),
            self._timeout,
        )

    async def ListTasks(
        self, request: task_pb2.ListTasksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> task_pb2.ListTasksResponse:
        checks.check_list_tasks(request)
        return await forward(
            self._coordinator.ListTasks,
            coordinator_pb2.CoordinatorServiceListTasksRequest(request=request),
            self._timeout,
        )

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> task_pb2.CancelTaskResponse:
        check_id(request.task_id, "task_id")
        return await forward(
            self._coordinator.CancelTask,
            coordinator_pb2.CoordinatorServiceCancelTaskRequest(request=request),
            self._timeout,
        )

    async def ListAgents(
        self, request: agent_pb2.ListAgentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> agent_pb2.ListAgentsResponse:
        checks.check_list_agents(request)
        return await forward(
            self._registry.ListAgents,
            registry_pb2.RegistryServiceListAgentsRequest(request=request),
            self._timeout,
        )
