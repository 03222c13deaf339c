"""A light health probe for containers: `python -m hivewire.core.healthprobe ADDR`.

ADDR is a gRPC `host:port` (grpc.health.v1 Check, exit 0 when SERVING) or an agent's
`http://host:port/metrics` (exit 0 on HTTP 200). It imports only grpc and the health stubs (or
urllib), not the CLI, so a probe every few seconds stays cheap; `hivewire healthcheck` runs it.
It dials TLS as HIVEWIRE_TLS_* (or the client config of `hivewire up --secure`) say.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_SERVING = 0
EXIT_NOT_SERVING = 1
DEFAULT_TIMEOUT = 3.0


def probe(target: str, service: str = "", timeout: float = DEFAULT_TIMEOUT) -> tuple[bool, str]:
    """(healthy, one line saying what was seen) for a gRPC address or an http(s) URL."""
    if target.startswith(("http://", "https://")):
        return _probe_http(target, timeout)
    return _probe_grpc(target, service, timeout)


def _probe_grpc(addr: str, service: str, timeout: float) -> tuple[bool, str]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from hivewire.core.tls import TlsError, sync_channel, tls_from_env

    request = health_pb2.HealthCheckRequest(service=service)
    try:
        channel = sync_channel(addr, tls_from_env())
    except TlsError as exc:
        return False, f"{addr}: {exc}"
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()  # a failed call is also a grpc.Call
            return False, f"{addr}: {code.name} {details or ''}".rstrip()
    status = str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    return status == "SERVING", f"{addr}: {status}"


def _probe_http(url: str, timeout: float) -> tuple[bool, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status = int(resp.status)
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"
    return status == 200, f"{url}: HTTP {status}"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hivewire.core.healthprobe", description=__doc__
    )
    parser.add_argument("addr", help="host:port of a Hivewire service, or http://host:port/metrics")
    parser.add_argument("--service", default="", help="service name to check ('' = the server)")
    parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, help="deadline (s)")
    args = parser.parse_args(argv)
    healthy, line = probe(args.addr, args.service, args.timeout)
    (sys.stdout if healthy else sys.stderr).write(line + "\n")
    return EXIT_SERVING if healthy else EXIT_NOT_SERVING


if __name__ == "__main__":
    sys.exit(main())
