"""Every process stops promptly and quietly on SIGTERM, also when its trace collector's host
name does not resolve (the compose endpoint `jaeger:4317` outside compose) or the collector
never answers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hivewire.v1 import task_pb2
from hivewire_services.common.redis import Redis
from tests.e2e.delivery_stack import Driver, Processes
from tests.settings import StackSettings

# `.invalid` never resolves (RFC 2606): the exporter's lookups and exports all fail.
UNRESOLVABLE_COLLECTOR = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.invalid:4317",
    "OTEL_EXPORTER_OTLP_INSECURE": "true",
}
# Idle, nothing in flight: a stop is the ordered shutdown plus at most a second's span flush.
STOP_WITHIN = 5.0
NOISE = ("Traceback", "never retrieved", "Fatal Python error")


@pytest.fixture
def silent_collector() -> Iterator[dict[str, str]]:
    """A collector that takes connections and never answers (hung, or a black hole), with the
    OTLP default export timeout of 10 s: a stop must not wait it out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # connections complete in the kernel's backlog; nothing ever reads them
        port = s.getsockname()[1]
        yield {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "10",
        }


@pytest.fixture(params=["untraced", "unresolvable-collector", "silent-collector"])
async def procs(
    request: pytest.FixtureRequest,
    settings: StackSettings,
    tmp_path: Path,
    silent_collector: dict[str, str],
) -> AsyncIterator[Processes]:
    env = {
        "untraced": {},
        "unresolvable-collector": UNRESOLVABLE_COLLECTOR,
        "silent-collector": silent_collector,
    }[request.param]
    p = Processes(settings, tmp_path, env)
    try:
        await p.start_registry()
        await p.start_coordinator()
        await p.start_gateway()
        p.start_agent("quiet", 2)
        yield p
    finally:
        p.close()


async def test_each_process_exits_within_seconds_of_sigterm_and_quietly(
    procs: Processes, redis: Redis, settings: StackSettings
) -> None:
    driver = Driver(redis, settings, procs.coordinators[0])
    try:
        await driver.agent_id("quiet")
        task = await driver.submit("sleep", json.dumps({"secs": 0.1}).encode())
        await driver.wait_for(task.task_id, lambda t: t.state == task_pb2.TASK_STATE_SUCCEEDED)
    finally:
        await driver.close()
    # Every process has spans to flush now (when traced); stop them in the house order.
    for name in ("quiet", "gateway", "coordinator", "registry"):
        proc = procs.children[name]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} still running 30 s after SIGTERM:\n{procs.logs()}")
        took = time.monotonic() - started
        assert code == 0, f"{name} exited with {code}:\n{procs.logs()}"
        assert took < STOP_WITHIN, f"{name} took {took:.1f}s to exit:\n{procs.logs()}"
    logs = procs.logs()
    assert not [n for n in NOISE if n in logs], logs
