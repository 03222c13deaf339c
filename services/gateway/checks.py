"""Edge checks of public requests: the gateway enforces the public limits before forwarding.

A check named after an RPC takes its request and the settings, so `Forward` can run any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import duration_pb2

from hivewire.v1 import agent_pb2, command_pb2, event_pb2, task_pb2, workflow_pb2
from hivewire_services.common import tenancy
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.submission import validate_batch, validate_task
from hivewire_services.common.task_parent import check_parent, no_parents
from hivewire_services.common.validation import (
    MAX_REQUEST_ID,
    StreamId,
    check_capability,
    check_id,
    check_page_size,
    check_schedule_name,
    parse_stream_id,
)
from hivewire_services.common.validation_json import parse_json_field
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.events.hub import EventFilter

MAX_COMMAND_PARAMS = 100
_EVENT_TYPES = frozenset(event_pb2.EventType.values()) - {event_pb2.EVENT_TYPE_UNSPECIFIED}


def check_submit(
    req: task_pb2.SubmitTaskRequest, settings: GatewaySettings, where: str = ""
) -> None:
    """One task; `where` prefixes field names in a batch (e.g. `tasks[3].`)."""
    validate_task(req, settings, where)
    check_parent(req)


def check_batch(tasks: Sequence[task_pb2.SubmitTaskRequest], settings: GatewaySettings) -> None:
    """A batch holds 1..max_batch valid tasks."""
    validate_batch(list(tasks), settings)


def submit_tasks(req: task_pb2.SubmitTasksRequest, settings: GatewaySettings) -> None:
    no_parents(req)
    check_batch(req.tasks, settings)


def submit_workflow(req: workflow_pb2.SubmitWorkflowRequest, settings: GatewaySettings) -> None:
    """A client's workflow; `command` is only ever set by RunCommand, from the catalog (hooks
    filter on it, so a client must not be able to claim a command it did not run)."""
    if req.command:
        raise InvalidArgument(
            "command is set only by RunCommand; leave it empty in SubmitWorkflow", field="command"
        )
    validate_workflow(req, settings)


def run_command(req: command_pb2.RunCommandRequest, settings: GatewaySettings) -> None:
    """A RunCommand request before the command is looked up: bounded parameters."""
    if len(req.request_id) > MAX_REQUEST_ID:
        raise InvalidArgument(f"request_id is longer than {MAX_REQUEST_ID}", field="request_id")
    if len(req.params) > MAX_COMMAND_PARAMS:
        raise InvalidArgument(
            f"params has {len(req.params)} entries, over the limit of {MAX_COMMAND_PARAMS}",
            field="params",
        )
    size = sum(len(k) + len(v) for k, v in req.params.items())
    if size > settings.max_payload_bytes:
        raise InvalidArgument(
            f"params hold {size} characters, over the limit of {settings.max_payload_bytes}",
            field="params",
        )


def task_id(
    req: task_pb2.GetTaskRequest | task_pb2.CancelTaskRequest, settings: GatewaySettings
) -> None:
    check_id(req.task_id, "task_id")


def task_output(req: task_pb2.StreamTaskOutputRequest) -> str:
    """The cursor a StreamTaskOutput request starts after ('0-0': the start)."""
    check_id(req.task_id, "task_id")
    if not req.after_cursor:
        return "0-0"
    parse_stream_id(req.after_cursor, "after_cursor")
    return req.after_cursor


def workflow_id(
    req: workflow_pb2.GetWorkflowRequest
    | workflow_pb2.CancelWorkflowRequest
    | workflow_pb2.RetryWorkflowRequest,
    settings: GatewaySettings,
) -> None:
    check_id(req.workflow_id, "workflow_id")


def signal_workflow(req: workflow_pb2.SignalWorkflowRequest, settings: GatewaySettings) -> None:
    check_id(req.workflow_id, "workflow_id")
    check_capability(req.step_id, "step_id")
    if req.payload.strip():
        parse_json_field(req.payload, "payload", settings.max_payload_bytes)


def list_tasks(req: task_pb2.ListTasksRequest, settings: GatewaySettings) -> None:
    _check_filter(req.page_size, req.capability)
    if req.state not in task_pb2.TaskState.values():
        raise InvalidArgument("state is not a known TaskState", field="state")


def list_agents(req: agent_pb2.ListAgentsRequest, settings: GatewaySettings) -> None:
    _check_filter(req.page_size, req.capability)
    if req.state not in agent_pb2.AgentState.values():
        raise InvalidArgument("state is not a known AgentState", field="state")


def list_workflows(req: workflow_pb2.ListWorkflowsRequest, settings: GatewaySettings) -> None:
    check_page_size(req.page_size)
    if req.state not in workflow_pb2.WorkflowState.values():
        raise InvalidArgument("state is not a known WorkflowState", field="state")


def list_dead_letters(req: task_pb2.ListDeadLettersRequest, settings: GatewaySettings) -> None:
    check_page_size(req.page_size)
    if req.page_token:
        parse_stream_id(req.page_token, "page_token")


def retry_dead_letter(req: task_pb2.RetryDeadLetterRequest, settings: GatewaySettings) -> None:
    parse_stream_id(req.dead_letter_id, "dead_letter_id")


def _check_filter(page_size: int, capability: str) -> None:
    check_page_size(page_size)
    if capability:
        check_capability(capability)


def duration_seconds(
    value: duration_pb2.Duration, name: str, default: float, low: float, high: float
) -> float:
    """A Duration field in seconds, `default` when unset; InvalidArgument outside low..high."""
    if value.seconds == 0 and value.nanos == 0:
        return default
    seconds = value.ToNanoseconds() / 1e9
    if not low <= seconds <= high:
        raise InvalidArgument(f"{name} must be between {low:g}s and {high:g}s", field=name)
    return seconds


def event_subscription(req: event_pb2.StreamEventsRequest) -> tuple[EventFilter, StreamId | None]:
    """The filter and resume position of a StreamEvents request."""
    for name in ("task_id", "workflow_id", "agent_id"):
        value = getattr(req, name)
        if value:
            check_id(value, name)
    if req.capability:
        check_capability(req.capability)
    types = frozenset(int(t) for t in req.types)
    if not types <= _EVENT_TYPES:
        raise InvalidArgument("types holds an unknown or unspecified EventType", field="types")
    if req.schedule:
        check_schedule_name(req.schedule, "schedule")
    since = parse_stream_id(req.since_cursor, "since_cursor") if req.since_cursor else None
    flt = EventFilter(
        task_id=req.task_id,
        workflow_id=req.workflow_id,
        agent_id=req.agent_id,
        capability=req.capability,
        types=types,
        tenant=tenancy.scope(),
        schedule=req.schedule,
    )
    return flt, since
