"""The `hivewire` command: run the stack, run agents, submit and inspect tasks, watch events."""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

import typer

from hivewire.cli._call import EXIT_TASK_FAILED, call, first, key_values
from hivewire.cli._dashboard import dashboard
from hivewire.cli._delay import StartAfterOpt, StartAtOpt, start_options
from hivewire.cli._dlq import dlq_app
from hivewire.cli._exec_agent import exec_agent
from hivewire.cli._format import (
    agents_table,
    dumps,
    event_line,
    task_detail,
    task_line,
    tasks_table,
    trace_id_line,
)
from hivewire.cli._health import healthcheck
from hivewire.cli._hints import DEFAULT_HINT_AFTER, HintAfterOpt, queued_task, wait_with_hints
from hivewire.cli._hooks import hooks_app
from hivewire.cli._output import task_output
from hivewire.cli._queue import queue_app
from hivewire.cli._ratelimit import parse_units, ratelimit_app
from hivewire.cli._redis_acl import redis_acl
from hivewire.cli._run import agent, up
from hivewire.cli._schedule import schedule_app
from hivewire.cli._tls import secrets_app, tls_app
from hivewire.cli._token import audit, token_app
from hivewire.cli._workflow import commands, run, workflow_app, workflows
from hivewire.client import TERMINAL_STATES, Client
from hivewire.core.convert import agent_to_dict, event_to_dict, task_to_dict
from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR, client_setting
from hivewire.v1 import event_pb2, task_pb2

app = typer.Typer(
    name="hivewire",
    help="Coordinate work across many agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(up)
app.command()(agent)
app.command("exec-agent")(exec_agent)
app.command()(dashboard)
app.command()(healthcheck)
app.command("redis-acl")(redis_acl)
task_app = typer.Typer(help="Inspect or cancel one task.", no_args_is_help=True)
app.add_typer(task_app, name="task")
task_app.command("output")(task_output)
app.add_typer(workflow_app, name="workflow")
app.command()(workflows)
app.command()(commands)
app.command()(run)
app.add_typer(dlq_app, name="dlq")
app.add_typer(schedule_app, name="schedule")
app.add_typer(ratelimit_app, name="ratelimit")
app.add_typer(hooks_app, name="hooks")
app.add_typer(tls_app, name="tls")
app.add_typer(secrets_app, name="secrets")
app.add_typer(queue_app, name="queue")
app.add_typer(token_app, name="token")
app.command()(audit)


def _enum_value(enum: Any, prefix: str, name: str, option: str) -> int:
    key = name.strip().upper().replace("-", "_")
    try:
        return int(enum.Value(key if key.startswith(prefix) else prefix + key))
    except ValueError:
        names = [
            v.name.removeprefix(prefix)
            for v in enum.DESCRIPTOR.values
            if not v.name.endswith("UNSPECIFIED")
        ]
        msg = f"{name!r} is not one of {', '.join(names)}"
        raise typer.BadParameter(msg, param_hint=option) from None


@app.callback()
def root(
    ctx: typer.Context,
    addr: Annotated[
        str | None,
        typer.Option(
            help="Gateway address (default $HIVEWIRE_GATEWAY_ADDR, else the one `hivewire up` "
            "wrote to .hivewire/client.env, else 127.0.0.1:50051)."
        ),
    ] = None,
) -> None:
    """Coordinate work across many agents over gRPC and Redis Streams."""
    ctx.obj = {"addr": addr or client_setting("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR)}


@app.command()
def submit(
    ctx: typer.Context,
    capability: Annotated[str, typer.Argument(help="Capability that runs the task.")],
    payload: Annotated[str, typer.Option(help="JSON payload.")] = "null",
    priority: Annotated[int, typer.Option(help="0..100, higher runs first.")] = 0,
    max_attempts: Annotated[int, typer.Option(help="Attempts allowed (0: server default).")] = 0,
    label: Annotated[
        list[str] | None, typer.Option(help="Required agent label key=value (repeatable).")
    ] = None,
    request_id: Annotated[str, typer.Option(help="Idempotency key.")] = "",
    progress_timeout: Annotated[
        float | None,
        typer.Option(help="Fail (and retry) an attempt silent for this many seconds.", min=0.001),
    ] = None,
    fairness_key: Annotated[
        str,
        typer.Option(help="Tasks of equal priority take turns across keys (default: tenant)."),
    ] = "",
    fairness_weight: Annotated[
        int, typer.Option(help="Turns per round for the key, 1..100 (0: 1).", min=0, max=100)
    ] = 0,
    start_after: StartAfterOpt = None,
    start_at: StartAtOpt = None,
    wait: Annotated[bool, typer.Option(help="Wait until the task finishes.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the task as JSON.")] = False,
    hint_after: HintAfterOpt = DEFAULT_HINT_AFTER,
    concurrency_key: Annotated[
        str, typer.Option(help="At most --concurrency-limit tasks with this key run at once.")
    ] = "",
    concurrency_limit: Annotated[
        int, typer.Option(help="Tasks with the key running at once (default 1).", min=0)
    ] = 0,
    concurrency_strategy: Annotated[
        str,
        typer.Option(
            help="When the key is full: queue (wait), cancel-in-progress (the newest wins) or"
            " cancel-newest (cancel this task)."
        ),
    ] = "",
    rate_limit: Annotated[
        list[str] | None,
        typer.Option(help="Take units from a rate limit when assigned: NAME:UNITS (repeatable)."),
    ] = None,
) -> None:
    """Submit a task; with --wait, exit 0 if it succeeded and 1 if not."""
    after, at = start_options(start_after, start_at)
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--payload") from None
    labels = key_values(label or [], "--label")
    strategy = 0
    if concurrency_strategy:
        strategy = _enum_value(
            task_pb2.ConcurrencyStrategy,
            "CONCURRENCY_STRATEGY_",
            concurrency_strategy,
            "--concurrency-strategy",
        )
    units = parse_units(rate_limit or [], "--rate-limit")

    async def go(client: Client) -> task_pb2.Task:
        task = await client.submit(
            capability,
            value,
            concurrency_key=concurrency_key,
            concurrency_limit=concurrency_limit,
            concurrency_strategy=strategy,
            rate_limit_units=units,
            priority=priority,
            max_attempts=max_attempts,
            required_labels=labels,
            request_id=request_id,
            progress_timeout=progress_timeout,
            fairness_key=fairness_key,
            fairness_weight=fairness_weight,
            start_after=after,
            start_at=at,
        )
        if not wait or task.state in TERMINAL_STATES:
            return task
        waiting = client.wait(task.task_id, timeout)
        queued = queued_task(client, task.task_id)
        return await wait_with_hints(client, waiting, queued, hint_after, labels)

    task = call(ctx, go)
    if as_json:
        typer.echo(dumps(task_to_dict(task)))
    elif wait:
        typer.echo(task_line(task))
    else:
        typer.echo(task.task_id)
    if not as_json and task.trace_id:
        typer.echo(trace_id_line(task.trace_id), err=True)
    if wait and task.state != task_pb2.TASK_STATE_SUCCEEDED:
        raise typer.Exit(EXIT_TASK_FAILED)


@task_app.command("get")
def task_get(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show one task."""
    task = call(ctx, lambda c: c.get(task_id))
    typer.echo(dumps(task_to_dict(task)) if as_json else task_detail(task))


@task_app.command("cancel")
def task_cancel(
    ctx: typer.Context, task_id: Annotated[str, typer.Argument(help="Task id.")]
) -> None:
    """Cancel a task that has not finished."""
    task = call(ctx, lambda c: c.cancel(task_id))
    typer.echo(task_line(task))


@app.command()
def tasks(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only this state, e.g. FAILED.")] = None,
    capability: Annotated[str | None, typer.Option(help="Only this capability.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many tasks.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List tasks, newest first."""
    state_value = (
        cast(
            task_pb2.TaskState.ValueType,
            _enum_value(task_pb2.TaskState, "TASK_STATE_", state, "--state"),
        )
        if state
        else None
    )
    found = call(
        ctx, lambda c: first(c.iter_tasks(state_value, capability, min(limit, 1000)), limit)
    )
    typer.echo(dumps([task_to_dict(t) for t in found]) if as_json else tasks_table(found))


@app.command()
def agents(
    ctx: typer.Context,
    show_all: Annotated[
        bool,
        typer.Option("--all", help="Also list the OFFLINE agents the registry still keeps."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List live agents (ONLINE, DRAINING), oldest registration first."""

    async def go(client: Client) -> list[Any]:
        return [a async for a in client.iter_agents(include_offline=show_all)]

    found = call(ctx, go)
    typer.echo(dumps([agent_to_dict(a) for a in found]) if as_json else agents_table(found))


@app.command()
def watch(
    ctx: typer.Context,
    task: Annotated[str, typer.Option(help="Only events of this task.")] = "",
    workflow: Annotated[str, typer.Option(help="Only events of this workflow.")] = "",
    agent: Annotated[str, typer.Option(help="Only events of this agent.")] = "",
    capability: Annotated[str, typer.Option(help="Only events of this capability.")] = "",
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this event type, e.g. TASK_FAILED (repeatable)."),
    ] = None,
    since: Annotated[str, typer.Option(help="Resume after this cursor.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print events as they happen, one line each, until Ctrl-C."""
    types = [
        cast(
            event_pb2.EventType.ValueType,
            _enum_value(event_pb2.EventType, "EVENT_TYPE_", t, "--type"),
        )
        for t in type_ or []
    ]

    async def go(client: Client) -> None:
        async for event in client.events(
            task_id=task,
            workflow_id=workflow,
            agent_id=agent,
            capability=capability,
            types=types,
            since_cursor=since,
        ):
            typer.echo(dumps(event_to_dict(event)) if as_json else event_line(event))

    call(ctx, go)


def main() -> None:
    app()
