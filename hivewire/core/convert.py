"""Plain-dict views of Task and Agent messages (for JSON output) and payload encoding."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from hivewire.v1 import agent_pb2, event_pb2, task_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.enum_type_wrapper import _EnumTypeWrapper


def encode_payload(payload: object) -> bytes:
    """bytes as they are; anything else (str included) JSON-encoded."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    return json.dumps(payload, separators=(",", ":")).encode()


def decode_data(data: bytes) -> Any:
    """JSON when it parses, else UTF-8 text, else base64 text; empty is None."""
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        pass
    try:
        return data.decode()
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()


def iso_time(msg: Message, field: str) -> str | None:
    """ISO-8601 UTC time of a Timestamp field, None when unset."""
    if not msg.HasField(field):
        return None
    ts: Timestamp = getattr(msg, field)
    return ts.ToDatetime(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def enum_name(enum: _EnumTypeWrapper[Any], value: int, prefix: str) -> str:
    """A proto enum value's name without the enum's prefix: TASK_STATE_RUNNING -> RUNNING."""
    return enum.Name(value).removeprefix(prefix)


def task_state_name(state: int) -> str:
    return enum_name(task_pb2.TaskState, state, "TASK_STATE_")


def agent_state_name(state: int) -> str:
    return enum_name(agent_pb2.AgentState, state, "AGENT_STATE_")


def task_to_dict(task: task_pb2.Task) -> dict[str, Any]:
    """A task as a JSON-ready dict, result and payload decoded."""
    return {
        "task_id": task.task_id,
        "capability": task.capability,
        "state": task_state_name(task.state),
        "payload": decode_data(task.payload),
        "result": decode_data(task.result),
        "error": task.error,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "agent_id": task.agent_id,
        "priority": task.priority,
        "required_labels": dict(task.required_labels),
        "request_id": task.request_id,
        "workflow_id": task.workflow_id,
        "create_time": iso_time(task, "create_time"),
        "assign_time": iso_time(task, "assign_time"),
        "start_time": iso_time(task, "start_time"),
        "end_time": iso_time(task, "end_time"),
        "trace_id": task.trace_id,
    }


def agent_to_dict(agent: agent_pb2.Agent) -> dict[str, Any]:
    """An agent as a JSON-ready dict."""
    return {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "capabilities": list(agent.capabilities),
        "state": agent_state_name(agent.state),
        "labels": dict(agent.labels),
        "max_concurrency": agent.max_concurrency,
        "in_flight": agent.in_flight,
        "register_time": iso_time(agent, "register_time"),
        "last_heartbeat_time": iso_time(agent, "last_heartbeat_time"),
        "lease_expire_time": iso_time(agent, "lease_expire_time"),
    }


def event_type_name(event_type: int) -> str:
    return enum_name(event_pb2.EventType, event_type, "EVENT_TYPE_")


def event_to_dict(event: event_pb2.Event) -> dict[str, Any]:
    """An event as a JSON-ready dict."""
    return {
        "cursor": event.cursor,
        "type": event_type_name(event.type),
        "time": iso_time(event, "time"),
        "task_id": event.task_id,
        "workflow_id": event.workflow_id,
        "agent_id": event.agent_id,
        "capability": event.capability,
        "task_state": task_state_name(event.task_state) if event.task_state else None,
        "attempt": event.attempt,
        "message": event.message,
    }
