"""`hivewire schedule create|list|get|pause|resume|trigger|delete`: recurring schedules."""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from hivewire.cli._call import call, first, key_values
from hivewire.cli._format import dumps, event_line, table
from hivewire.client import SCHEDULE_OVERLAPS as OVERLAPS
from hivewire.client import Client, schedule_to_dict
from hivewire.core.convert import event_to_dict
from hivewire.v1 import event_pb2, schedule_pb2

schedule_app = typer.Typer(
    help="Recurring schedules: start a task, workflow or command every interval or on a cron.",
    no_args_is_help=True,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
EVENTS_IDLE_SECONDS = 1.0


def parse_duration(text: str) -> float:
    """`10s`, `5m`, `1h30m`, `500ms`, `2d` (or plain seconds) as seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise typer.BadParameter(f"{text!r} is not a duration like 10s, 5m or 1h30m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _detail(s: schedule_pb2.Schedule) -> str:
    d = schedule_to_dict(s)
    when = f"every {d['every_seconds']:g}s" if "every_seconds" in d else (
        f"cron {d['cron']!r} ({d['time_zone']})"
    )  # fmt: skip
    target = d["target"]
    what = (
        f"command {target['command']}" if target.get("command")
        else f"workflow {target['workflow']!r}" if "workflow" in target
        else f"task {target['capability']}"
    )  # fmt: skip
    lines = [
        f"schedule {d['name']}  {'PAUSED' if d['paused'] else 'ACTIVE'}",
        f"  when:     {when}",
        f"  starts:   {what}",
        f"  overlap:  {d['overlap']}{'  (a tick is buffered)' if d['buffered'] else ''}",
        f"  next:     {d['next_fire_time'] or '-'}",
        f"  last:     {d['last_fire_time'] or '-'}  {d['last_run_id']}",
        f"  fired:    {d['fired_count']}  skipped: {d['skipped_count']}",
    ]
    return "\n".join(lines)


async def _recent_events(client: Client, name: str, limit: int) -> list[event_pb2.Event]:
    """The schedule's events still in the events stream (the last `limit`): replayed from the
    start until the stream goes idle."""
    req = event_pb2.StreamEventsRequest(schedule=name, since_cursor="0-0", max_batch=1000)
    req.heartbeat_interval.FromSeconds(int(EVENTS_IDLE_SECONDS))
    found: list[event_pb2.Event] = []
    async for frame in client.stream(req, resume=False):
        kind = frame.WhichOneof("frame")
        if kind == "heartbeat":
            break
        found.extend([frame.event] if kind == "event" else frame.events.events)
    return found[-limit:]


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]


@schedule_app.command("create")
def schedule_create(
    ctx: typer.Context,
    name: NameArg,
    cron: Annotated[
        str, typer.Option(help="5-field cron expression, e.g. '*/5 * * * MON-FRI'.")
    ] = "",
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of --cron (default UTC).")] = "",
    every: Annotated[str, typer.Option(help="Interval, e.g. 10s, 5m, 1h30m (at least 1s).")] = "",
    capability: Annotated[str, typer.Option(help="Start a task of this capability.")] = "",
    payload: Annotated[str, typer.Option(help="The task's payload (JSON).")] = "null",
    priority: Annotated[int, typer.Option(help="The task's priority (-100..100).")] = 0,
    max_attempts: Annotated[int, typer.Option(help="The task's attempts (0: default).")] = 0,
    command: Annotated[str, typer.Option(help="Start this custom command instead.")] = "",
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="Command parameter key=value.")
    ] = None,
    overlap: Annotated[
        str, typer.Option(help="While the previous run is active: skip, buffer-one, allow-all.")
    ] = "skip",
    as_json: JsonOpt = False,
) -> None:
    """Create a schedule: `--every 10s` or `--cron EXPR [--tz ZONE]`, starting a task
    (`--capability C --payload JSON`) or a command (`--command NAME -p k=v ...`)."""
    if bool(cron) == bool(every):
        raise typer.BadParameter("give exactly one of --cron and --every")
    if bool(capability) == bool(command):
        raise typer.BadParameter("give exactly one of --capability and --command")
    if overlap not in OVERLAPS:
        raise typer.BadParameter(f"one of {', '.join(OVERLAPS)}", param_hint="--overlap")
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    seconds = parse_duration(every) if every else None
    params = key_values(param or [], "-p")

    async def go(c: Client) -> schedule_pb2.Schedule:
        return await c.create_schedule(
            name, every=seconds, cron=cron, time_zone=tz, capability=capability, payload=body,
            priority=priority, max_attempts=max_attempts, command=command, params=params,
            overlap=overlap,
        )  # fmt: skip

    s = call(ctx, go)
    typer.echo(dumps(schedule_to_dict(s)) if as_json else _detail(s))


@schedule_app.command("list")
def schedule_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many schedules.", min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List schedules by name, with their next fire times."""
    found = call(ctx, lambda c: first(c.iter_schedules(min(limit, 1000)), limit))
    if as_json:
        typer.echo(dumps([schedule_to_dict(s) for s in found]))
        return
    rows = []
    for s in found:
        d = schedule_to_dict(s)
        when = f"every {d['every_seconds']:g}s" if "every_seconds" in d else d["cron"]
        state = "paused" if d["paused"] else "active"
        rows.append([d["name"], when, state, d["next_fire_time"] or "-", str(d["fired_count"])])
    typer.echo(table(["NAME", "WHEN", "STATE", "NEXT FIRE", "FIRED"], rows))


@schedule_app.command("get")
def schedule_get(
    ctx: typer.Context,
    name: NameArg,
    events: Annotated[
        int, typer.Option(help="Show this many of its latest events (0: none).", min=0)
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Show a schedule and its latest events (fired, skipped, paused ...)."""

    async def go(c: Client) -> tuple[schedule_pb2.Schedule, list[event_pb2.Event]]:
        s = await c.get_schedule(name)
        return s, (await _recent_events(c, name, events) if events else [])

    s, recent = call(ctx, go)
    if as_json:
        typer.echo(dumps({**schedule_to_dict(s), "events": [event_to_dict(e) for e in recent]}))
        return
    typer.echo(_detail(s))
    if recent:
        typer.echo("events:")
        for e in recent:
            typer.echo("  " + event_line(e))


@schedule_app.command("pause")
def schedule_pause(ctx: typer.Context, name: NameArg) -> None:
    """Pause a schedule: no tick fires until it is resumed."""
    typer.echo(_detail(call(ctx, lambda c: c.pause_schedule(name))))


@schedule_app.command("resume")
def schedule_resume(ctx: typer.Context, name: NameArg) -> None:
    """Resume a paused schedule on its grid (ticks missed while paused are not fired)."""
    typer.echo(_detail(call(ctx, lambda c: c.resume_schedule(name))))


@schedule_app.command("trigger")
def schedule_trigger(ctx: typer.Context, name: NameArg) -> None:
    """Fire a schedule now, outside its grid; prints the id of the run it started."""
    s = call(ctx, lambda c: c.trigger_schedule(name))
    typer.echo(s.last_run_id)


@schedule_app.command("delete")
def schedule_delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a schedule (the runs it started are left alone)."""
    call(ctx, lambda c: c.delete_schedule(name))
    typer.echo(f"deleted {name}")
