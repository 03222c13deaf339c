"""One trace per workflow: the mechanism the workflow engine calls.

A workflow outlives any process, so its span cannot stay open until it finishes. Instead a
short `workflow <name>` span is recorded when the workflow is accepted (a child of the
SubmitWorkflow RPC's span); its traceparent is stored with the workflow and passed as each
step task's `ValidTask.trace_id`. Every step's dispatch, the agents' processing and the result
application then hang under that span: one trace per workflow. Each advance (a step finished,
steps released, the workflow finished) is a short span under the workflow span as well.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from hivewire.core import tracing


def start_workflow_trace(workflow_id: str, name: str = "", parent_traceparent: str = "") -> str:
    """Record the workflow's span and return the traceparent to store with the workflow.

    The parent is `parent_traceparent` if given, else the current span (the SubmitWorkflow
    RPC); with tracing off the returned traceparent still carries the caller's trace id (or a
    fresh one), so step tasks share a trace id either way.
    """
    parent = tracing.context_of(parent_traceparent) if parent_traceparent else None
    if not tracing.recording():
        return parent_traceparent or tracing.current_or_new_traceparent()
    span = tracing.tracer().start_span(
        f"workflow {name or workflow_id}",
        context=parent,
        kind=SpanKind.INTERNAL,
        attributes={tracing.WORKFLOW_ID: workflow_id, "hivewire.workflow_name": name},
    )
    span.end()
    return tracing.traceparent_of(trace.set_span_in_context(span))


def record_workflow_advance(
    workflow_traceparent: str,
    workflow_id: str,
    what: str,
    *,
    task_id: str = "",
    step_id: str = "",
    attributes: dict[str, str | int] | None = None,
) -> None:
    """A short `workflow advance` span under the workflow span (`what`: e.g. "step succeeded",
    "steps released", "workflow succeeded"). Costs nothing when tracing is off."""
    if not tracing.recording():
        return
    attrs: dict[str, str | int] = {tracing.WORKFLOW_ID: workflow_id, "hivewire.advance": what}
    if task_id:
        attrs[tracing.TASK_ID] = task_id
    if step_id:
        attrs["hivewire.step_id"] = step_id
    attrs.update(attributes or {})
    span = tracing.tracer().start_span(
        "workflow advance", context=tracing.context_of(workflow_traceparent), attributes=attrs
    )
    span.end()
