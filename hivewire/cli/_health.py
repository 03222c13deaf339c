"""`hivewire healthcheck ADDR`: grpc.health.v1 Check, exit 0 when SERVING (container probes).

An agent serves no gRPC; its probe is `hivewire healthcheck http://host:port/metrics`, which
passes when its metrics endpoint answers. Container runtimes run the probe every few seconds,
so `hivewire healthcheck` loads neither the rest of the CLI nor its option parser (`run_probe`,
argparse) and an HTTP probe no gRPC: a probe costs a fifth of a full CLI start.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Annotated

import typer

EXIT_NOT_SERVING = 1
DEFAULT_TIMEOUT = 3.0
MIN_TIMEOUT = 0.1
ADDR_HELP = "host:port of a Hivewire service (or http://host:port/metrics of an agent)."
SERVICE_HELP = "Service name to check ('' = the server)."
TIMEOUT_HELP = "Deadline of the check (s)."


def probe(addr: str, service: str = "", timeout: float = DEFAULT_TIMEOUT) -> int:
    """Check `addr` and print the outcome; the exit code (0: healthy)."""
    if addr.startswith(("http://", "https://")):
        return _check_http(addr, timeout)
    return _check_grpc(addr, service, timeout)


def healthcheck(
    addr: Annotated[str, typer.Argument(help=ADDR_HELP)],
    service: Annotated[str, typer.Option(help=SERVICE_HELP)] = "",
    timeout: Annotated[float, typer.Option(help=TIMEOUT_HELP, min=MIN_TIMEOUT)] = DEFAULT_TIMEOUT,
) -> None:
    """Check a service's grpc.health.v1 status: exit 0 if SERVING, 1 if not or unreachable."""
    code = probe(addr, service, timeout)
    if code:
        raise typer.Exit(code)


def run_probe(args: Sequence[str]) -> int:
    """`hivewire healthcheck ARGS` as a container probe runs it; the exit code."""
    parser = argparse.ArgumentParser(prog="hivewire healthcheck", description=healthcheck.__doc__)
    parser.add_argument("addr", help=ADDR_HELP)
    parser.add_argument("--service", default="", help=SERVICE_HELP)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help=TIMEOUT_HELP)
    options = parser.parse_args(args)
    if options.timeout < MIN_TIMEOUT:
        parser.error(f"--timeout must be at least {MIN_TIMEOUT}")
    return probe(options.addr, options.service, options.timeout)


def _check_grpc(addr: str, service: str, timeout: float) -> int:
    import asyncio  # here, like gRPC: an HTTP probe needs neither

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async def check() -> str:
        async with grpc.aio.insecure_channel(addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=service)
            reply = await stub.Check(request, timeout=timeout)
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    try:
        status = asyncio.run(check())
    except grpc.aio.AioRpcError as exc:
        print(f"{addr}: {exc.code().name} {exc.details() or ''}".rstrip(), file=sys.stderr)
        return EXIT_NOT_SERVING
    print(f"{addr}: {status}")
    return 0 if status == "SERVING" else EXIT_NOT_SERVING


def _check_http(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status = int(resp.status)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return EXIT_NOT_SERVING
    print(f"{url}: HTTP {status}")
    return 0 if status == 200 else EXIT_NOT_SERVING
