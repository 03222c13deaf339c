"""`hivewire healthcheck ADDR`: grpc.health.v1 Check, exit 0 when SERVING (container probes).

An agent serves no gRPC; its probe is `hivewire healthcheck http://host:port/metrics`, which
passes when its metrics endpoint answers.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Annotated

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc

EXIT_NOT_SERVING = 1


async def check(addr: str, service: str, deadline: float) -> str:
    """The health status name of `service` ('' for the whole server) at `addr`."""
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def healthcheck(
    addr: Annotated[str, typer.Argument(help="host:port of a Hivewire service.")],
    service: Annotated[str, typer.Option(help="Service name to check ('' = the server).")] = "",
    timeout: Annotated[float, typer.Option(help="Deadline of the check (s).", min=0.1)] = 3.0,
) -> None:
    """Check a service's grpc.health.v1 status: exit 0 if SERVING, 1 if not or unreachable."""
    if addr.startswith(("http://", "https://")):
        _check_http(addr, timeout)
        return
    try:
        status = asyncio.run(check(addr, service, timeout))
    except grpc.aio.AioRpcError as exc:
        typer.echo(f"{addr}: {exc.code().name} {exc.details() or ''}".rstrip(), err=True)
        raise typer.Exit(EXIT_NOT_SERVING) from None
    typer.echo(f"{addr}: {status}")
    if status != "SERVING":
        raise typer.Exit(EXIT_NOT_SERVING)


def _check_http(url: str, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status = int(resp.status)
    except (urllib.error.URLError, OSError) as exc:
        typer.echo(f"{url}: {exc}", err=True)
        raise typer.Exit(EXIT_NOT_SERVING) from None
    typer.echo(f"{url}: HTTP {status}")
    if status != 200:
        raise typer.Exit(EXIT_NOT_SERVING)
