"""Dotted event type names (`task.failed`, `agent.offline`): the one mapping from EventType."""

from __future__ import annotations

from hivewire.v1 import event_pb2

_PREFIX = "EVENT_TYPE_"


def _dotted(enum_name: str) -> str:
    # EVENT_TYPE_TASK_DEAD_LETTERED -> task.dead_lettered: the first word is the subject.
    subject, _, verb = enum_name.removeprefix(_PREFIX).lower().partition("_")
    return f"{subject}.{verb}" if verb else subject


EVENT_NAMES: dict[int, str] = {
    number: _dotted(name)
    for name, number in event_pb2.EventType.items()
    if number != event_pb2.EVENT_TYPE_UNSPECIFIED
}
"""EventType number -> dotted name, for every value of the enum except UNSPECIFIED."""

EVENT_TYPES: dict[str, int] = {name: number for number, name in EVENT_NAMES.items()}
"""Dotted name -> EventType number."""


def event_name(event_type: int) -> str:
    """The dotted name of an EventType (`unknown.<n>` for a value newer than this code)."""
    return EVENT_NAMES.get(event_type, f"unknown.{event_type}")


def event_type(name: str) -> int:
    """The EventType of a dotted name; ValueError naming the known ones otherwise."""
    try:
        return EVENT_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ValueError(f"unknown event type {name!r} (known: {known})") from None
