"""`hivewire task output ID [--follow]`: print a task's output, stderr and log lines to stderr."""

from __future__ import annotations

from typing import Annotated

import typer

from hivewire.cli._call import call
from hivewire.cli._format import dumps
from hivewire.client import Client
from hivewire.core.convert import chunk_to_dict
from hivewire.v1 import stream_pb2

_TO_STDOUT = frozenset({stream_pb2.OUTPUT_STREAM_UNSPECIFIED, stream_pb2.OUTPUT_STREAM_STDOUT})


def task_output(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(help="Task id.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output until the task ends.")
    ] = False,
    after: Annotated[str, typer.Option(help="Start after this chunk cursor (see --json).")] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per chunk, with its cursor.")
    ] = False,
) -> None:
    """Print a task's output: its stdout lines on stdout, its stderr and log lines on stderr."""

    async def go(client: Client) -> None:
        async for chunk in client.task_output(task_id, follow=follow, after_cursor=after):
            if as_json:
                typer.echo(dumps(chunk_to_dict(chunk)))
            else:
                typer.echo(chunk.text, err=chunk.stream not in _TO_STDOUT)

    call(ctx, go)
