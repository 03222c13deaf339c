"""`hivewire queue pause|resume|list` and `hivewire agent drain ID`: operator controls."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hivewire.cli._call import call
from hivewire.cli._format import dumps, table
from hivewire.core.convert import agent_to_dict, iso_time
from hivewire.v1 import operator_pb2

queue_app = typer.Typer(
    help="Pause, resume or list capability queues (operator controls).", no_args_is_help=True
)

CapabilityArg = Annotated[str, typer.Argument(help="Capability whose queue it is.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def queue_to_dict(queue: operator_pb2.Queue) -> dict[str, Any]:
    return {
        "capability": queue.capability,
        "paused": queue.paused,
        "pending": queue.pending,
        "pause_time": iso_time(queue, "pause_time"),
    }


def _show(queue: operator_pb2.Queue, as_json: bool) -> None:
    if as_json:
        typer.echo(dumps(queue_to_dict(queue)))
        return
    state = "paused" if queue.paused else "running"
    typer.echo(f"{queue.capability}: {state}, {queue.pending} pending")


@queue_app.command("pause")
def queue_pause(ctx: typer.Context, capability: CapabilityArg, as_json: JsonOpt = False) -> None:
    """Stop assigning the capability's tasks: they stay PENDING (and new ones queue up)
    until `hivewire queue resume`. Running tasks are not touched."""
    _show(call(ctx, lambda c: c.pause_queue(capability)), as_json)


@queue_app.command("resume")
def queue_resume(ctx: typer.Context, capability: CapabilityArg, as_json: JsonOpt = False) -> None:
    """Assign a paused capability's tasks again."""
    _show(call(ctx, lambda c: c.resume_queue(capability)), as_json)


@queue_app.command("list")
def queue_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List queues: capability, paused flag, pending depth and when it was paused."""
    queues = call(ctx, lambda c: c.list_queues())
    if as_json:
        typer.echo(dumps([queue_to_dict(q) for q in queues]))
        return
    rows = [
        [q.capability, "yes" if q.paused else "no", str(q.pending), iso_time(q, "pause_time") or ""]
        for q in queues
    ]
    typer.echo(table(["CAPABILITY", "PAUSED", "PENDING", "PAUSED_AT"], rows))


def drain_agent(ctx: typer.Context, agent_id: str, as_json: bool = False) -> None:
    """`hivewire agent drain ID`: the agent gets no new work, finishes what it holds, exits."""
    agent = call(ctx, lambda c: c.drain_agent(agent_id))
    if as_json:
        typer.echo(dumps(agent_to_dict(agent)))
        return
    typer.echo(f"agent {agent.agent_id} ({agent.name}) is draining")
