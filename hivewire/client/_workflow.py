"""Workflow and custom-command calls of the client SDK (mixed into hivewire.client.Client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from hivewire.client._calls import GatewayCalls
from hivewire.client._loops import every_item, poll_state
from hivewire.core.backoff import backoff
from hivewire.core.convert import decode_data, enum_name, enum_namer, iso_time
from hivewire.core.workflow_file import policy_value, workflow_request
from hivewire.v1 import command_pb2, workflow_pb2

WORKFLOW_TERMINAL_STATES = frozenset(
    {
        workflow_pb2.WORKFLOW_STATE_SUCCEEDED,
        workflow_pb2.WORKFLOW_STATE_FAILED,
        workflow_pb2.WORKFLOW_STATE_CANCELLED,
    }
)


workflow_state_name = enum_namer(workflow_pb2.WorkflowState, "WORKFLOW_STATE_")
step_state_name = enum_namer(workflow_pb2.StepState, "STEP_STATE_")


def workflow_to_dict(wf: workflow_pb2.Workflow) -> dict[str, Any]:
    """A workflow as a JSON-ready dict, step outputs decoded."""
    return {
        "workflow_id": wf.workflow_id,
        "name": wf.name,
        "command": wf.command,
        "state": workflow_state_name(wf.state),
        "failure_policy": enum_name(
            workflow_pb2.FailurePolicy, wf.failure_policy, "FAILURE_POLICY_"
        ).lower(),
        "create_time": iso_time(wf, "create_time"),
        "end_time": iso_time(wf, "end_time"),
        "trace_id": wf.trace_id,
        "retry_count": wf.retry_count,
        "steps": [
            {
                "step_id": s.step_id,
                "capability": s.capability,
                "depends_on": list(s.depends_on),
                "state": step_state_name(s.state),
                "task_ids": list(s.task_ids),
                "agent_id": s.agent_id,
                "attempt": s.attempt,
                "output": decode_data(s.output),
                "error": s.error,
                "start_time": iso_time(s, "start_time"),
                "end_time": iso_time(s, "end_time"),
                **_wait_fields(s),
                **(
                    {"map_over": s.map_over, "map_total": s.map_total, "map_done": s.map_done}
                    if s.map_over
                    else {}
                ),
            }
            for s in wf.steps
        ],
    }


def _wait_fields(s: workflow_pb2.WorkflowStep) -> dict[str, Any]:
    """The fields of signal and sleep steps, and retries, only where they apply."""
    out: dict[str, Any] = {}
    if s.wait_for_signal:
        out["wait_for_signal"] = True
        out["signalled_by"] = s.signalled_by
    if s.HasField("sleep"):
        out["sleep_seconds"] = s.sleep.ToMilliseconds() / 1000
    if s.HasField("wake_time"):
        out["wake_time"] = iso_time(s, "wake_time")
    if s.retries:
        out["retries"] = s.retries
    return out


def command_to_dict(cmd: command_pb2.Command) -> dict[str, Any]:
    return {
        "name": cmd.name,
        "description": cmd.description,
        "parameters": [
            {
                "name": p.name,
                "type": enum_name(command_pb2.ParameterType, p.type, "PARAMETER_TYPE_").lower(),
                "required": p.required,
                "default": decode_data(p.default_json.encode()),
                "description": p.description,
            }
            for p in cmd.parameters
        ],
        "steps": list(cmd.step_ids),
    }


class WorkflowCalls(GatewayCalls):
    """Workflow and command calls of the Client."""

    async def submit_workflow(
        self,
        workflow: workflow_pb2.SubmitWorkflowRequest | Mapping[str, Any] | Sequence[Any],
        *,
        name: str = "",
        failure_policy: str = "",
        request_id: str = "",
    ) -> workflow_pb2.Workflow:
        """Submit a workflow: a request, a workflow document ({name, failure_policy, steps}),
        or a list of steps in the workflow file format (hivewire/core/workflow_file.py)."""
        if isinstance(workflow, workflow_pb2.SubmitWorkflowRequest):
            req = workflow
        else:
            doc = dict(workflow) if isinstance(workflow, Mapping) else {"steps": list(workflow)}
            req = workflow_request(doc, request_id)
        if name:
            req.name = name
        if failure_policy:
            req.failure_policy = policy_value(failure_policy)  # type: ignore[assignment]
        if request_id:
            req.request_id = request_id
        return await self._workflow_call(self._stub.SubmitWorkflow, req)

    async def get_workflow(self, workflow_id: str) -> workflow_pb2.Workflow:
        request = workflow_pb2.GetWorkflowRequest(workflow_id=workflow_id)
        return await self._workflow_call(self._stub.GetWorkflow, request)

    async def list_workflows(
        self,
        state: workflow_pb2.WorkflowState.ValueType | None = None,
        page_size: int = 100,
        page_token: str = "",
    ) -> tuple[list[workflow_pb2.Workflow], str]:
        """One page of workflows, newest first, and the next page token ('' on the last)."""
        resp = await self._stub.ListWorkflows(
            workflow_pb2.ListWorkflowsRequest(
                page_size=page_size,
                page_token=page_token,
                state=state or workflow_pb2.WORKFLOW_STATE_UNSPECIFIED,
            ),
            timeout=self.timeout,
        )
        return list(resp.workflows), str(resp.next_page_token)

    def iter_workflows(
        self, state: workflow_pb2.WorkflowState.ValueType | None = None, page_size: int = 100
    ) -> AsyncIterator[workflow_pb2.Workflow]:
        return every_item(lambda token: self.list_workflows(state, page_size, token))

    async def cancel_workflow(self, workflow_id: str) -> workflow_pb2.Workflow:
        request = workflow_pb2.CancelWorkflowRequest(workflow_id=workflow_id)
        return await self._workflow_call(self._stub.CancelWorkflow, request)

    async def signal_workflow(
        self, workflow_id: str, step_id: str, payload: object = None
    ) -> workflow_pb2.Workflow:
        """Deliver a signal to a step waiting for one (`wait_for_signal`): the payload (JSON
        text or bytes, or any value, encoded as JSON) becomes the step's output. Repeating a
        delivered signal with the same payload is harmless."""
        if isinstance(payload, bytes):
            raw = payload
        elif isinstance(payload, str):
            raw = payload.encode()
        else:
            raw = json.dumps(payload, separators=(",", ":")).encode()
        request = workflow_pb2.SignalWorkflowRequest(
            workflow_id=workflow_id, step_id=step_id, payload=raw
        )
        return await self._workflow_call(self._stub.SignalWorkflow, request)

    async def retry_workflow(self, workflow_id: str) -> workflow_pb2.Workflow:
        """Re-run a FAILED or CANCELLED workflow from its failure: steps that did not succeed
        (and so their dependents) run again; succeeded steps keep their tasks and outputs."""
        request = workflow_pb2.RetryWorkflowRequest(workflow_id=workflow_id)
        return await self._workflow_call(self._stub.RetryWorkflow, request)

    async def wait_workflow(
        self,
        workflow_id: str,
        timeout: float = 300.0,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> workflow_pb2.Workflow:
        """Poll GetWorkflow (backoff 10 ms up to 500 ms) until it ends; TimeoutError past it."""
        get = lambda: self.get_workflow(workflow_id)  # noqa: E731
        delays = backoff(0.01, 0.5)
        return await poll_state(
            get, WORKFLOW_TERMINAL_STATES, delays, timeout, f"workflow {workflow_id}"
        )

    async def list_commands(self) -> list[command_pb2.Command]:
        resp = await self._stub.ListCommands(
            command_pb2.ListCommandsRequest(), timeout=self.timeout
        )
        return list(resp.commands)

    async def run_command(
        self, name: str, params: Mapping[str, object] | None = None, *, request_id: str = ""
    ) -> workflow_pb2.Workflow:
        """Start a custom command; parameter values are sent as text (lists comma-joined
        unless given as text already)."""
        text = {k: _param_text(v) for k, v in (params or {}).items()}
        request = command_pb2.RunCommandRequest(name=name, params=text, request_id=request_id)
        return await self._workflow_call(self._stub.RunCommand, request)


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return json.dumps(list(value))
    return str(value)
