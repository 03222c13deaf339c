"""Workflow and custom-command RPCs of the GatewayService, as a mixin: check, then forward."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeAlias

from hivewire.v1 import command_pb2, coordinator_pb2, coordinator_pb2_grpc, workflow_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.validation import MAX_REQUEST_ID, check_id, check_page_size
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.gateway.commands import CommandCatalog
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.upstream import forward

# grpc ships no type hints, so its context type is Any to mypy.
Context: TypeAlias = Any
# The repository's commands/ directory, used when ./commands does not exist.
_SOURCE_COMMANDS = Path(__file__).resolve().parents[2] / "commands"


def commands_dir(settings: GatewaySettings) -> Path:
    """HIVEWIRE_COMMANDS_DIR, else ./commands, else the commands/ next to the source tree."""
    if settings.commands_dir:
        return Path(settings.commands_dir)
    here = Path("commands")
    return here if here.is_dir() else _SOURCE_COMMANDS


class WorkflowRpcs:
    """Mixed into GatewayServicer; uses its settings, coordinator stub and timeout."""

    _settings: GatewaySettings
    _coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub
    _timeout: float

    async def _submit_workflow(
        self, request: workflow_pb2.SubmitWorkflowRequest
    ) -> workflow_pb2.SubmitWorkflowResponse:
        validate_workflow(request, self._settings)
        return await forward(
            self._coordinator.SubmitWorkflow,
            coordinator_pb2.CoordinatorServiceSubmitWorkflowRequest(request=request),
            self._timeout,
        )

    async def SubmitWorkflow(
        self, request: workflow_pb2.SubmitWorkflowRequest, context: Context
    ) -> workflow_pb2.SubmitWorkflowResponse:
        return await self._submit_workflow(request)

    async def GetWorkflow(
        self, request: workflow_pb2.GetWorkflowRequest, context: Context
    ) -> workflow_pb2.GetWorkflowResponse:
        check_id(request.workflow_id, "workflow_id")
        return await forward(
            self._coordinator.GetWorkflow,
            coordinator_pb2.CoordinatorServiceGetWorkflowRequest(request=request),
            self._timeout,
        )

    async def ListWorkflows(
        self, request: workflow_pb2.ListWorkflowsRequest, context: Context
    ) -> workflow_pb2.ListWorkflowsResponse:
        check_page_size(request.page_size)
        if request.state not in workflow_pb2.WorkflowState.values():
            raise InvalidArgument("state is not a known WorkflowState", field="state")
        return await forward(
            self._coordinator.ListWorkflows,
            coordinator_pb2.CoordinatorServiceListWorkflowsRequest(request=request),
            self._timeout,
        )

    async def CancelWorkflow(
        self, request: workflow_pb2.CancelWorkflowRequest, context: Context
    ) -> workflow_pb2.CancelWorkflowResponse:
        check_id(request.workflow_id, "workflow_id")
        return await forward(
            self._coordinator.CancelWorkflow,
            coordinator_pb2.CoordinatorServiceCancelWorkflowRequest(request=request),
            self._timeout,
        )

    async def ListCommands(
        self, request: command_pb2.ListCommandsRequest, context: Context
    ) -> command_pb2.ListCommandsResponse:
        catalog = CommandCatalog(commands_dir(self._settings))
        return command_pb2.ListCommandsResponse(commands=catalog.list())

    async def RunCommand(
        self, request: command_pb2.RunCommandRequest, context: Context
    ) -> command_pb2.RunCommandResponse:
        if len(request.request_id) > MAX_REQUEST_ID:
            raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID}", field="request_id")
        catalog = CommandCatalog(commands_dir(self._settings))
        workflow_request = catalog.render(request.name, dict(request.params), request.request_id)
        reply = await self._submit_workflow(workflow_request)
        return command_pb2.RunCommandResponse(workflow=reply.workflow)
