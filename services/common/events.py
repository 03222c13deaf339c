"""The events stream: entries carry a serialized hivewire.v1.Event in field `event`."""

from __future__ import annotations

from hivewire.core.clock import now_ms, ts_from_ms
from hivewire.v1 import event_pb2

EVENT_FIELD = b"event"


def decode_entry(entry_id: bytes | str, fields: dict[bytes, bytes]) -> event_pb2.Event:
    """The Event of one stream entry, with its cursor set to the entry id."""
    event = event_pb2.Event.FromString(fields[EVENT_FIELD])
    event.cursor = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return event


def make_event(event_type: int, **fields: object) -> event_pb2.Event:
    """An Event stamped now (for events emitted from Python rather than Lua)."""
    event = event_pb2.Event(type=event_type, **fields)  # type: ignore[arg-type]
    event.time.CopyFrom(ts_from_ms(now_ms()))
    return event
