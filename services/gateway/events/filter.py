"""Event filters and stream ids (`<ms>-<seq>` cursors) of the events stream."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire.v1 import event_pb2
from hivewire_services.common.tenancy import tenant_of
from hivewire_services.common.validation import StreamId, parse_stream_id

__all__ = ["EventFilter", "StreamId", "format_stream_id", "parse_stream_id", "sid"]


def format_stream_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


@dataclass(frozen=True)
class EventFilter:
    """Every set criterion must match; empty strings and an empty type set match anything.

    `tenant` (None: every tenant) scopes events about work (a task or a workflow) to one
    tenant; events about no tenant's work (an agent's) match any tenant.
    """

    task_id: str = ""
    workflow_id: str = ""
    agent_id: str = ""
    capability: str = ""
    types: frozenset[int] = frozenset()
    tenant: str | None = None
    schedule: str = ""

    def matches(self, event: event_pb2.Event) -> bool:
        if (
            self.tenant is not None
            and (event.task_id or event.workflow_id)
            and tenant_of(event.tenant) != self.tenant
        ):
            return False
        return (
            (not self.task_id or event.task_id == self.task_id)
            and (not self.workflow_id or event.workflow_id == self.workflow_id)
            and (not self.agent_id or event.agent_id == self.agent_id)
            and (not self.capability or event.capability == self.capability)
            and (not self.types or event.type in self.types)
            and (not self.schedule or event.schedule == self.schedule)
        )


def sid(entry_id: bytes | str) -> StreamId:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)
