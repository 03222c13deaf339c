"""What a handler sees: TaskContext, the Handler type, and NonRetryableError."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from opentelemetry import trace

from hivewire.agent._reports import TASK_LOGGER, AttemptReporter
from hivewire.agent._spawn import Children
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
    reporter: AttemptReporter | None = field(default=None, compare=False, repr=False)
    """Where progress and output go (set by the agent; None: they are discarded)."""
    children: Children | None = field(default=None, compare=False, repr=False)
    """The attempt's child tasks (set by the agent; None: spawn is unavailable)."""

    async def spawn(self, capability: str, payload: object = None, **fields: Any) -> Any:
        """Run a child task and return its result (decoded JSON, else text): the child joins
        this task's workflow and trace and is cancelled if this attempt ends first. Raises
        ChildTaskFailed when the child fails, times out or is cancelled. `fields` are other
        SubmitTaskRequest fields (priority, max_attempts, required_labels, ...). Submitted
        through the agent's gateway (HIVEWIRE_GATEWAY_ADDR), whatever the agent's transport."""
        if self.children is None:
            raise RuntimeError("spawn needs a task run by an Agent")
        return await self.children.spawn(capability, payload, **fields)

    async def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report how far the attempt has come: `fraction` 0.0..1.0, `message` what it does now
        (at most 1,024 characters kept). An argument left None keeps its last value. Reports
        are coalesced (at most one every ~50 ms); each one keeps a `progress_timeout` at bay."""
        if self.reporter is not None:
            await self.reporter.progress(fraction, message)

    async def output(self, text: str, stream: str = "stdout") -> None:
        """Add lines to the task's output (`stream`: "stdout", "stderr" or "log"); each line
        becomes one chunk. Waits while too much output is unsent (back-pressure)."""
        if self.reporter is not None:
            await self.reporter.output(text, stream)

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records (INFO and up) become LOG lines of the task's output; they also
        propagate to the `hivewire.task` logger, so the agent's own log shows them."""
        if self.reporter is not None:
            return self.reporter.logger
        return logging.getLogger(TASK_LOGGER)

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
