"""Plain-dict views of Task, Agent, Event and output messages (JSON output), payload encoding."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping, MutableSequence
from typing import TYPE_CHECKING, Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from hivewire.v1 import agent_pb2, event_pb2, stream_pb2, task_pb2

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


def enum_namer(enum: _EnumTypeWrapper[Any], prefix: str) -> Callable[[int], str]:
    """`enum_name` of one enum, as a function of the value."""
    return functools.partial(enum_name, enum, prefix=prefix)


task_state_name = enum_namer(task_pb2.TaskState, "TASK_STATE_")
agent_state_name = enum_namer(agent_pb2.AgentState, "AGENT_STATE_")
concurrency_strategy_name = enum_namer(task_pb2.ConcurrencyStrategy, "CONCURRENCY_STRATEGY_")
event_type_name = enum_namer(event_pb2.EventType, "EVENT_TYPE_")
output_stream_name = enum_namer(stream_pb2.OutputStream, "OUTPUT_STREAM_")


def message_dict(
    msg: Message, names: Iterable[str], convert: Mapping[str, Callable[[Any], Any]]
) -> dict[str, Any]:
    """Fields by name as JSON-ready values: Timestamps as ISO text (None when unset), maps as
    dicts, repeated fields as lists, and `convert[name]` applied where it has one."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(msg, name)
        if name in convert:
            out[name] = convert[name](value)
        elif isinstance(value, Timestamp):
            out[name] = iso_time(msg, name)
        elif isinstance(value, MutableMapping):
            out[name] = dict(value)
        elif isinstance(value, MutableSequence):
            out[name] = list(value)
        else:
            out[name] = value
    return out


_TASK_KEYS = [
    "task_id",
    "capability",
    "state",
    "payload",
    "result",
    "error",
    "attempt",
    "max_attempts",
    "agent_id",
    "priority",
    "required_labels",
    "request_id",
    "workflow_id",
    "create_time",
    "scheduled_time",
    "assign_time",
    "start_time",
    "end_time",
    "trace_id",
    "progress",
    "output_bytes",
    "output_dropped_bytes",
    "concurrency_key",
    "concurrency_limit",
    "concurrency_strategy",
    "rate_limit_units",
    "waiting_reason",
]


def progress_to_dict(progress: stream_pb2.TaskProgress) -> dict[str, Any] | None:
    """`{fraction, message, time}` (fraction None when unknown); None when nothing was reported."""
    if not progress.ByteSize():
        return None
    fraction = progress.fraction if progress.HasField("fraction") else None
    return {"fraction": fraction, "message": progress.message, "time": iso_time(progress, "time")}


_TASK_CONVERT: dict[str, Callable[[Any], Any]] = {
    "state": task_state_name,
    "payload": decode_data,
    "result": decode_data,
    "progress": progress_to_dict,
    "concurrency_strategy": lambda s: concurrency_strategy_name(s) if s else None,
}

_AGENT_KEYS = [
    "agent_id",
    "name",
    "capabilities",
    "state",
    "labels",
    "max_concurrency",
    "in_flight",
    "register_time",
    "last_heartbeat_time",
    "lease_expire_time",
    "principal",
]

_EVENT_KEYS = [
    "cursor",
    "type",
    "time",
    "task_id",
    "workflow_id",
    "agent_id",
    "capability",
    "task_state",
    "attempt",
    "message",
    "progress",
    "output_chunks",
    "output_cursor",
    "schedule",
    "schedule_tick_time",
    "concurrency_key",
    "rate_limit",
]
_EVENT_CONVERT: dict[str, Callable[[Any], Any]] = {
    "type": event_type_name,
    "task_state": lambda state: task_state_name(state) if state else None,
    "progress": progress_to_dict,
}


def task_to_dict(task: task_pb2.Task) -> dict[str, Any]:
    """A task as a JSON-ready dict, result and payload decoded."""
    return message_dict(task, _TASK_KEYS, _TASK_CONVERT)


def agent_to_dict(agent: agent_pb2.Agent) -> dict[str, Any]:
    """An agent as a JSON-ready dict."""
    return message_dict(agent, _AGENT_KEYS, {"state": agent_state_name})


def event_to_dict(event: event_pb2.Event) -> dict[str, Any]:
    """An event as a JSON-ready dict."""
    return message_dict(event, _EVENT_KEYS, _EVENT_CONVERT)


def chunk_to_dict(chunk: stream_pb2.OutputChunk) -> dict[str, Any]:
    """An output chunk as a JSON-ready dict (stream as STDOUT, STDERR or LOG)."""
    return message_dict(
        chunk,
        ("cursor", "stream", "time", "text"),
        {"stream": lambda s: output_stream_name(s or stream_pb2.OUTPUT_STREAM_STDOUT)},
    )
