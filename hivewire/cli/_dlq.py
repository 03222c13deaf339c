"""`hivewire dlq list` and `hivewire dlq retry ID`: the dead-letter stream from the command line."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from hivewire.cli._call import call, first
from hivewire.cli._format import dumps, short, table, task_line
from hivewire.core.convert import iso_time, task_to_dict
from hivewire.v1 import task_pb2

dlq_app = typer.Typer(help="List or retry dead-lettered tasks.", no_args_is_help=True)


def dead_letter_to_dict(letter: task_pb2.DeadLetter) -> dict[str, Any]:
    return {
        "dead_letter_id": letter.dead_letter_id,
        "dead_letter_time": iso_time(letter, "dead_letter_time"),
        "task": task_to_dict(letter.task),
        "errors": [
            {
                "attempt": e.attempt,
                "agent_id": e.agent_id,
                "error": e.error,
                "time": iso_time(e, "time"),
            }
            for e in letter.errors
        ],
    }


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many entries.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List dead letters, newest first."""
    found = call(ctx, lambda c: first(c.iter_dead_letters(min(limit, 1000)), limit))
    if as_json:
        typer.echo(dumps([dead_letter_to_dict(d) for d in found]))
        return
    rows = [
        [
            d.dead_letter_id,
            d.task.task_id,
            d.task.capability,
            str(d.task.attempt),
            short(d.task.error),
        ]
        for d in found
    ]
    typer.echo(table(["ID", "TASK", "CAPABILITY", "ATTEMPTS", "ERROR"], rows))


@dlq_app.command("retry")
def dlq_retry(
    ctx: typer.Context,
    dead_letter_id: Annotated[str, typer.Argument(help="Dead-letter id (from `dlq list`).")],
) -> None:
    """Put a dead-lettered task back in its queue with a fresh attempt budget."""
    task = call(ctx, lambda c: c.retry_dead_letter(dead_letter_id))
    typer.echo(task_line(task))
