"""`hivewire healthcheck ADDR`: grpc.health.v1 Check, exit 0 when SERVING.

An agent serves no gRPC; its probe is `hivewire healthcheck http://host:port/metrics`, which
passes when its metrics endpoint answers. Containers run the same check without the CLI's
imports: `python -m hivewire.core.healthprobe ADDR` (hivewire/core/healthprobe.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from hivewire.core.healthprobe import EXIT_NOT_SERVING, probe


def healthcheck(
    addr: Annotated[str, typer.Argument(help="host:port of a Hivewire service.")],
    service: Annotated[str, typer.Option(help="Service name to check ('' = the server).")] = "",
    timeout: Annotated[float, typer.Option(help="Deadline of the check (s).", min=0.1)] = 3.0,
) -> None:
    """Check a service's grpc.health.v1 status: exit 0 if SERVING, 1 if not or unreachable."""
    healthy, line = probe(addr, service, timeout)
    typer.echo(line, err=not healthy)
    if not healthy:
        raise typer.Exit(EXIT_NOT_SERVING)
