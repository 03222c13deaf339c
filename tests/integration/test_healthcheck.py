"""`hivewire healthcheck` against a real gRPC server and a real metrics endpoint."""

from __future__ import annotations

import asyncio
import sys

import pytest

from hivewire.core.metrics_server import ANY_PORT, start_metrics_server
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.server import create_server


async def healthcheck(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "healthcheck", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_serving_then_not_serving_then_gone() -> None:
    # No Redis behind this server: health follows only set_serving.
    server = await create_server(
        "127.0.0.1:0", lambda s: None, ["test.Service"], CommonSettings(), watch_redis=False
    )
    addr = f"127.0.0.1:{server.port}"
    try:
        code, out = await healthcheck(addr)
        assert (code, out.strip()) == (0, f"{addr}: SERVING")
        code, out = await healthcheck(addr, "--service", "test.Service")
        assert code == 0, out
        await server.set_serving(False)
        code, out = await healthcheck(addr)
        assert (code, out.strip()) == (1, f"{addr}: NOT_SERVING")
    finally:
        await server.server.stop(0)
    code, out = await healthcheck(addr, "--timeout", "1")
    assert code == 1 and "UNAVAILABLE" in out


async def test_unknown_service_is_not_healthy() -> None:
    server = await create_server(
        "127.0.0.1:0", lambda s: None, [], CommonSettings(), watch_redis=False
    )
    try:
        code, out = await healthcheck(f"127.0.0.1:{server.port}", "--service", "nope")
        assert code == 1 and "NOT_FOUND" in out
    finally:
        await server.server.stop(0)


async def test_http_probe_of_a_metrics_endpoint() -> None:
    metrics = start_metrics_server(ANY_PORT, "127.0.0.1")
    assert metrics is not None and metrics.port > 0
    url = f"http://{metrics.addr}/metrics"
    try:
        code, out = await healthcheck(url)
        assert (code, out.strip()) == (0, f"{url}: HTTP 200")
    finally:
        metrics.close()
    code, out = await healthcheck(url, "--timeout", "1")
    assert code == 1


def test_metrics_port_zero_is_off_and_other_negatives_are_refused() -> None:
    assert start_metrics_server(0, "127.0.0.1") is None
    with pytest.raises(ValueError, match="neither a port"):
        start_metrics_server(ANY_PORT - 1, "127.0.0.1")
