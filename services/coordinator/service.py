"""The CoordinatorService servicer: validates, calls the task store, maps to protos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2
from hivewire_services.common.submission import validate_batch, validate_task
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.dead_letter_rpcs import DeadLetterRpcs
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflow_rpcs import WorkflowRpcs

# grpc ships no type hints, so its context type is Any to mypy.
Context: TypeAlias = Any


class CoordinatorService(
    WorkflowRpcs, DeadLetterRpcs, coordinator_pb2_grpc.CoordinatorServiceServicer
):
    def __init__(
        self, store: TaskStore, settings: CoordinatorSettings, on_submit: Callable[[], None]
    ) -> None:
        self.store = store
        self.settings = settings
        self._on_submit = on_submit

    async def SubmitTask(
        self, request: coordinator_pb2.CoordinatorServiceSubmitTaskRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceSubmitTaskResponse:
        spec = validate_task(request.request, self.settings)
        [task] = await self.store.submit([spec])
        self._on_submit()
        return coordinator_pb2.CoordinatorServiceSubmitTaskResponse(
            response=task_pb2.SubmitTaskResponse(task=task)
        )

    async def SubmitTasks(
        self, request: coordinator_pb2.CoordinatorServiceSubmitTasksRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceSubmitTasksResponse:
        specs = validate_batch(list(request.request.tasks), self.settings)
        tasks = await self.store.submit(specs)
        self._on_submit()
        return coordinator_pb2.CoordinatorServiceSubmitTasksResponse(
            response=task_pb2.SubmitTasksResponse(tasks=tasks)
        )

    async def GetTask(
        self, request: coordinator_pb2.CoordinatorServiceGetTaskRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceGetTaskResponse:
        task = await self.store.get(request.request.task_id)
        return coordinator_pb2.CoordinatorServiceGetTaskResponse(
            response=task_pb2.GetTaskResponse(task=task)
        )

    async def ListTasks(
        self, request: coordinator_pb2.CoordinatorServiceListTasksRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceListTasksResponse:
        req = request.request
        page = await self.store.list(
            page_size=req.page_size,
            page_token=req.page_token,
            state=req.state,
            capability=req.capability,
        )
        return coordinator_pb2.CoordinatorServiceListTasksResponse(
            response=task_pb2.ListTasksResponse(
                tasks=page.tasks, next_page_token=page.next_page_token
            )
        )

    async def CancelTask(
        self, request: coordinator_pb2.CoordinatorServiceCancelTaskRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceCancelTaskResponse:
        task = await self.store.cancel(request.request.task_id)
        return coordinator_pb2.CoordinatorServiceCancelTaskResponse(
            response=task_pb2.CancelTaskResponse(task=task)
        )
