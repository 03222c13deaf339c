"""`hivewire workflow run|get|cancel|signal|retry`, `workflows`, `commands`, `run`."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from hivewire.cli._call import EXIT_TASK_FAILED, call, first, key_values
from hivewire.cli._format import dumps, short, table, trace_id_line
from hivewire.cli._hints import DEFAULT_HINT_AFTER, HintAfterOpt, queued_steps, wait_with_hints
from hivewire.client import (
    Client,
    command_to_dict,
    step_state_name,
    workflow_state_name,
    workflow_to_dict,
)
from hivewire.core.convert import decode_data, enum_name, iso_time
from hivewire.core.workflow_file import WorkflowFileError, load_yaml, workflow_request
from hivewire.v1 import command_pb2, workflow_pb2

MAX_RESULT_CHARS = 2000
WAITING_ON_TIME = frozenset(
    {workflow_pb2.STEP_STATE_AWAITING_SIGNAL, workflow_pb2.STEP_STATE_SLEEPING}
)

workflow_app = typer.Typer(help="Run, inspect or cancel workflows.", no_args_is_help=True)


def workflow_detail(wf: workflow_pb2.Workflow) -> str:
    """A workflow and a table of its steps."""
    head = f"workflow {wf.workflow_id}  {workflow_state_name(wf.state)}"
    if wf.name:
        head += f"  {wf.name}"
    if wf.retry_count:
        head += f"  (retried {wf.retry_count}x)"
    rows = []
    for s in wf.steps:
        state = step_state_name(s.state)
        if s.HasField("wake_time") and s.state in WAITING_ON_TIME:
            state += f" until {iso_time(s, 'wake_time')}"
        if s.retries:
            state += f" (retried {s.retries}x)"
        if s.map_over:
            state += f" {s.map_done}/{s.map_total}"
        out = s.error or (short(decode_data(s.output), 50) if s.output else "")
        kind = s.capability or ("(signal)" if s.wait_for_signal else "(sleep)")
        rows.append([s.step_id, kind, state, s.agent_id[:12], str(s.attempt), out])
    headers = ["STEP", "CAPABILITY", "STATE", "AGENT", "ATTEMPT", "OUTPUT / ERROR"]
    text = head + "\n" + table(headers, rows)
    # The outputs of the final steps (those nothing depends on) are the workflow's result.
    needed = {d for s in wf.steps for d in s.depends_on}
    for s in wf.steps:
        if s.step_id not in needed and s.state == workflow_pb2.STEP_STATE_SUCCEEDED:
            text += f"\n{s.step_id}: {short(decode_data(s.output), MAX_RESULT_CHARS)}"
    return text


def _print(wf: workflow_pb2.Workflow, as_json: bool, text: str = "") -> None:
    """The workflow as JSON (with its trace_id), or `text` (default: the detail) on stdout and
    the trace id on stderr, as for a task."""
    typer.echo(dumps(workflow_to_dict(wf)) if as_json else text or workflow_detail(wf))
    if not as_json and wf.trace_id:
        typer.echo(trace_id_line(wf.trace_id), err=True)


def _finish(ctx: typer.Context, start: Callable[[Client], Awaitable[workflow_pb2.Workflow]],
            wait: bool, timeout: float, as_json: bool, hint_after: float) -> None:  # fmt: skip
    async def go(client: Client) -> workflow_pb2.Workflow:
        wf = await start(client)
        if not wait:
            return wf
        waiting = client.wait_workflow(wf.workflow_id, timeout)
        queued = queued_steps(client, wf.workflow_id)
        return await wait_with_hints(client, waiting, queued, hint_after)

    wf = call(ctx, go)
    _print(wf, as_json, "" if wait else wf.workflow_id)
    if wait and wf.state != workflow_pb2.WORKFLOW_STATE_SUCCEEDED:
        raise typer.Exit(EXIT_TASK_FAILED)


WaitOpt = Annotated[
    bool, typer.Option(help="Wait until the workflow ends (exit 1 unless it succeeded).")
]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait with --wait.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ById = Callable[[Client, str], Awaitable[workflow_pb2.Workflow]]


@workflow_app.command("run")
def workflow_run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Workflow YAML file.", exists=True, dir_okay=False)],
    request_id: Annotated[str, typer.Option(help="Idempotency key.")] = "",
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
    as_json: JsonOpt = False,
    hint_after: HintAfterOpt = DEFAULT_HINT_AFTER,
) -> None:
    """Submit the workflow in FILE; prints its id (or, with --wait, how it ended)."""
    try:
        req = workflow_request(load_yaml(file.read_text(), str(file)), request_id)
    except WorkflowFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="FILE") from None
    _finish(ctx, lambda c: c.submit_workflow(req), wait, timeout, as_json, hint_after)


def _by_id_command(name: str, help_text: str, method: ById) -> None:
    """`hivewire workflow NAME WORKFLOW_ID [--json]`: one call by id, the workflow printed."""

    def command(
        ctx: typer.Context,
        workflow_id: Annotated[str, typer.Argument(help="Workflow id.")],
        as_json: JsonOpt = False,
    ) -> None:
        _print(call(ctx, lambda c: method(c, workflow_id)), as_json)

    workflow_app.command(name, help=help_text)(command)


_by_id_command(
    "get",
    "Show a workflow with every step's state, agent, attempt and output.",
    Client.get_workflow,
)
_by_id_command("cancel", "Cancel a running workflow and its running tasks.", Client.cancel_workflow)
_by_id_command(
    "retry",
    "Re-run a FAILED or CANCELLED workflow from its failure: the steps that did not succeed"
    " (and their dependents) run again; succeeded steps keep their outputs.",
    Client.retry_workflow,
)


@workflow_app.command("signal")
def workflow_signal(
    ctx: typer.Context,
    workflow_id: Annotated[str, typer.Argument(help="Workflow id.")],
    step_id: Annotated[str, typer.Argument(help="The signal step (wait_for_signal) to release.")],
    payload: Annotated[
        str, typer.Option(help="JSON the step outputs (to its dependents); default null.")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Signal a step that waits for one: it succeeds with PAYLOAD and its dependents run."""
    if payload.strip():
        try:
            json.loads(payload)
        except ValueError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None
    _print(call(ctx, lambda c: c.signal_workflow(workflow_id, step_id, payload.encode())), as_json)


def workflows(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only this state, e.g. RUNNING.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List workflows, newest first."""
    value = None
    if state:
        key = state.strip().upper()
        try:
            value = workflow_pb2.WorkflowState.Value(
                key if key.startswith("WORKFLOW_STATE_") else "WORKFLOW_STATE_" + key
            )
        except ValueError:
            raise typer.BadParameter(
                f"{state!r} is not a workflow state", param_hint="--state"
            ) from None

    found = call(ctx, lambda c: first(c.iter_workflows(value, min(limit, 1000)), limit))
    if as_json:
        typer.echo(dumps([workflow_to_dict(w) for w in found]))
        return
    rows = [
        [
            w.workflow_id,
            workflow_state_name(w.state),
            w.name,
            f"{sum(s.state == workflow_pb2.STEP_STATE_SUCCEEDED for s in w.steps)}/{len(w.steps)}",
        ]
        for w in found
    ]
    typer.echo(table(["WORKFLOW", "STATE", "NAME", "STEPS OK"], rows))


def commands(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the custom commands (workflow templates) the gateway offers."""
    found = call(ctx, lambda c: c.list_commands())
    if as_json:
        typer.echo(dumps([command_to_dict(c) for c in found]))
        return
    for cmd in found:
        typer.echo(f"{cmd.name}: {cmd.description}")
        for p in cmd.parameters:
            kind = enum_name(command_pb2.ParameterType, p.type, "PARAMETER_TYPE_").lower()
            extra = (
                " (required)"
                if p.required
                else f" (default {p.default_json})"
                if p.default_json
                else ""
            )
            typer.echo(f"    -p {p.name}=<{kind}>{extra}  {p.description}")
        typer.echo(f"    steps: {', '.join(cmd.step_ids)}")


def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Command name (see `hivewire commands`).")],
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Parameter key=value (repeatable).")
    ] = None,
    request_id: Annotated[str, typer.Option(help="Idempotency key.")] = "",
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 300.0,
    as_json: JsonOpt = False,
    hint_after: HintAfterOpt = DEFAULT_HINT_AFTER,
) -> None:
    """Run a custom command as a workflow; prints its id (or, with --wait, how it ended)."""
    values = key_values(param or [], "-p")
    _finish(ctx, lambda c: c.run_command(name, cast(dict[str, Any], values), request_id=request_id),
            wait, timeout, as_json, hint_after)  # fmt: skip
