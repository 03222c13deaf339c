"""`hivewire healthcheck` and the containers' light probe (`python -m hivewire.core.healthprobe`)
against a real gRPC server and a real metrics endpoint."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys

import pytest

from hivewire.core.metrics_server import ANY_PORT, start_metrics_server
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.server import create_server

CLI = ("-m", "hivewire.cli", "healthcheck")
PROBE = ("-m", "hivewire.core.healthprobe")


@pytest.fixture(params=[CLI, PROBE], ids=["cli", "probe"])
def entry(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """Both ways to run the check, which must behave the same."""
    return tuple(request.param)


async def run_check(entry: tuple[str, ...], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *entry, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_serving_then_not_serving_then_gone(entry: tuple[str, ...]) -> None:
    # No Redis behind this server: health follows only set_serving.
    server = await create_server(
        "127.0.0.1:0", lambda s: None, ["test.Service"], CommonSettings(), watch_redis=False
    )
    addr = f"127.0.0.1:{server.port}"
    try:
        code, out = await run_check(entry, addr)
        assert (code, out.strip()) == (0, f"{addr}: SERVING")
        code, out = await run_check(entry, addr, "--service", "test.Service")
        assert code == 0, out
        await server.set_serving(False)
        code, out = await run_check(entry, addr)
        assert (code, out.strip()) == (1, f"{addr}: NOT_SERVING")
    finally:
        await server.server.stop(0)
    code, out = await run_check(entry, addr, "--timeout", "1")
    assert code == 1 and "UNAVAILABLE" in out


async def test_unknown_service_is_not_healthy(entry: tuple[str, ...]) -> None:
    server = await create_server(
        "127.0.0.1:0", lambda s: None, [], CommonSettings(), watch_redis=False
    )
    try:
        code, out = await run_check(entry, f"127.0.0.1:{server.port}", "--service", "nope")
        assert code == 1 and "NOT_FOUND" in out
    finally:
        await server.server.stop(0)


async def test_http_probe_of_a_metrics_endpoint(entry: tuple[str, ...]) -> None:
    metrics = start_metrics_server(ANY_PORT, "127.0.0.1")
    assert metrics is not None and metrics.port > 0
    url = f"http://{metrics.addr}/metrics"
    try:
        code, out = await run_check(entry, url)
        assert (code, out.strip()) == (0, f"{url}: HTTP 200")
    finally:
        metrics.close()
    code, out = await run_check(entry, url, "--timeout", "1")
    assert code == 1


def test_metrics_port_zero_is_off_and_other_negatives_are_refused() -> None:
    assert start_metrics_server(0, "127.0.0.1") is None
    with pytest.raises(ValueError, match="neither a port"):
        start_metrics_server(ANY_PORT - 1, "127.0.0.1")


# What the light probe must not import: the CLI and what only the CLI needs.
HEAVY = ("typer", "hivewire.cli", "hivewire.client", "hivewire.agent", "hivewire.dashboard")
_PROBE_MODULES = """
import json, sys
from hivewire.core.healthprobe import main
code = main(sys.argv[1:])
print(json.dumps([code, sorted(sys.modules)]))
"""


def _probe_in_fresh_python(target: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE_MODULES, target, "--timeout", "2"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    code, modules = json.loads(out.stdout.splitlines()[-1])
    return int(code), set(modules)


async def test_the_probe_imports_grpc_but_not_the_cli(refused_addr: str) -> None:
    server = await create_server(
        "127.0.0.1:0", lambda s: None, [], CommonSettings(), watch_redis=False
    )
    try:
        code, modules = await asyncio.to_thread(_probe_in_fresh_python, f"127.0.0.1:{server.port}")
    finally:
        await server.server.stop(0)
    assert code == 0
    assert "grpc" in modules  # the check really ran in that process
    assert not [m for m in modules if m.startswith(HEAVY)], sorted(modules)
    code, modules = await asyncio.to_thread(_probe_in_fresh_python, refused_addr)
    assert code == 1
    code, modules = await asyncio.to_thread(_probe_in_fresh_python, f"http://{refused_addr}/m")
    assert code == 1 and "grpc" not in modules  # an agent's probe needs no grpc


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU of running `argv` to its end (the least of three runs)."""
    runs = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, capture_output=True, timeout=60, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        runs.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(runs)


def test_the_probe_costs_a_fraction_of_the_cli(refused_addr: str) -> None:
    probe = cpu_seconds([sys.executable, *PROBE, refused_addr])
    cli = cpu_seconds([sys.executable, *CLI, refused_addr])
    assert probe < cli / 2, (probe, cli)
