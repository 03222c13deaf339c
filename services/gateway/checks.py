"""Edge checks of public requests: the gateway enforces the public limits before forwarding."""

from __future__ import annotations

from collections.abc import Sequence

from hivewire.v1 import agent_pb2, event_pb2, task_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.submission import validate_batch, validate_task
from hivewire_services.common.validation import (
    check_capability,
    check_id,
    check_page_size,
)
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.gateway.events.hub import EventFilter, StreamId, parse_stream_id

_EVENT_TYPES = frozenset(event_pb2.EventType.values()) - {event_pb2.EVENT_TYPE_UNSPECIFIED}


def check_submit(
    req: task_pb2.SubmitTaskRequest, settings: GatewaySettings, where: str = ""
) -> None:
    """One task; `where` prefixes field names in a batch (e.g. `tasks[3].`)."""
    validate_task(req, settings, where)


def check_batch(tasks: Sequence[task_pb2.SubmitTaskRequest], settings: GatewaySettings) -> None:
    """A batch holds 1..max_batch valid tasks."""
    validate_batch(list(tasks), settings)


def check_list_tasks(req: task_pb2.ListTasksRequest) -> None:
    check_page_size(req.page_size)
    if req.capability:
        check_capability(req.capability)
    if req.state not in task_pb2.TaskState.values():
        raise InvalidArgument("state is not a known TaskState", field="state")


def check_list_agents(req: agent_pb2.ListAgentsRequest) -> None:
    check_page_size(req.page_size)
    if req.capability:
        check_capability(req.capability)
    if req.state not in agent_pb2.AgentState.values():
        raise InvalidArgument("state is not a known AgentState", field="state")


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
    since = parse_stream_id(req.since_cursor, "since_cursor") if req.since_cursor else None
    flt = EventFilter(
        task_id=req.task_id,
        workflow_id=req.workflow_id,
        agent_id=req.agent_id,
        capability=req.capability,
        types=types,
    )
    return flt, since
