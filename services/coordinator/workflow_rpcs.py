"""Workflow RPCs of the CoordinatorService, as a mixin: validate, call the engine, wrap."""

from __future__ import annotations

from typing import Any, TypeAlias

from hivewire.v1 import coordinator_pb2, workflow_pb2
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.workflows.engine import WorkflowEngine

Context: TypeAlias = Any


class WorkflowRpcs:
    """Mixed into CoordinatorService; the server sets `workflows` before serving."""

    settings: CoordinatorSettings
    workflows: WorkflowEngine

    async def SubmitWorkflow(
        self, request: coordinator_pb2.CoordinatorServiceSubmitWorkflowRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceSubmitWorkflowResponse:
        defn = validate_workflow(request.request, self.settings)
        workflow = await self.workflows.submit(defn)
        return coordinator_pb2.CoordinatorServiceSubmitWorkflowResponse(
            response=workflow_pb2.SubmitWorkflowResponse(workflow=workflow)
        )

    async def GetWorkflow(
        self, request: coordinator_pb2.CoordinatorServiceGetWorkflowRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceGetWorkflowResponse:
        workflow = await self.workflows.store.get(request.request.workflow_id)
        return coordinator_pb2.CoordinatorServiceGetWorkflowResponse(
            response=workflow_pb2.GetWorkflowResponse(workflow=workflow)
        )

    async def ListWorkflows(
        self, request: coordinator_pb2.CoordinatorServiceListWorkflowsRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceListWorkflowsResponse:
        req = request.request
        page = await self.workflows.store.list(
            page_size=req.page_size, page_token=req.page_token, state=req.state
        )
        return coordinator_pb2.CoordinatorServiceListWorkflowsResponse(
            response=workflow_pb2.ListWorkflowsResponse(
                workflows=page.workflows, next_page_token=page.next_page_token
            )
        )

    async def CancelWorkflow(
        self, request: coordinator_pb2.CoordinatorServiceCancelWorkflowRequest, context: Context
    ) -> coordinator_pb2.CoordinatorServiceCancelWorkflowResponse:
        workflow = await self.workflows.cancel(request.request.workflow_id)
        return coordinator_pb2.CoordinatorServiceCancelWorkflowResponse(
            response=workflow_pb2.CancelWorkflowResponse(workflow=workflow)
        )
