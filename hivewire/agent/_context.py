"""What a handler sees: TaskContext, the Handler type, and NonRetryableError."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from opentelemetry import trace

from hivewire.core import tracing

Handler: TypeAlias = Callable[["TaskContext"], Any]
"""An async or sync callable taking a TaskContext and returning bytes, str or a JSON value."""


class NonRetryableError(Exception):
    """Raise from a handler to fail the task now, without further attempts."""


@dataclass(frozen=True, slots=True)
class TaskContext:
    """One attempt of one task, as given to a handler."""

    task_id: str
    attempt: int
    capability: str
    payload: bytes
    agent_id: str
    workflow_id: str = ""
    span: trace.Span = field(default=trace.INVALID_SPAN, compare=False, repr=False)
    """The handler's span (current while it runs): add attributes and events to it."""

    @property
    def tracer(self) -> trace.Tracer:
        """A tracer for child spans of the handler's span (`ctx.tracer.start_as_current_span`)."""
        return tracing.tracer()

    @property
    def trace_id(self) -> str:
        """The 32-hex trace id of this attempt ('' when untraced)."""
        sc = self.span.get_span_context()
        return format(sc.trace_id, "032x") if sc.is_valid else ""

    def json(self) -> Any:
        """The payload decoded as JSON (an empty payload is None)."""
        return json.loads(self.payload) if self.payload else None

    def text(self) -> str:
        return self.payload.decode()
