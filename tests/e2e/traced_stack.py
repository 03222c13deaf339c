"""The traced stack for end-to-end telemetry tests: `hivewire up --demo` exporting spans to an
in-process OTLP collector, with every service's /metrics on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from hivewire.embedded_redis import free_port
from tests.e2e.conftest import READY, Stack
from tests.e2e.otel_collector import Collector, SpanRecord


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def metrics_ports() -> dict[str, int]:
    return {name: free_port() for name in ("gateway", "registry", "coordinator")}


@pytest.fixture(scope="module")
def traced_stack(
    tmp_path_factory: pytest.TempPathFactory, collector: Collector, metrics_ports: dict[str, int]
) -> Iterator[Stack]:
    ports = {name: free_port() for name in ("redis", "gateway", "registry", "coordinator")}
    addr = {k: f"127.0.0.1:{v}" for k, v in ports.items()}
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "HIVEWIRE_RETRY_INITIAL_BACKOFF": "0.2",
        "HIVEWIRE_LOG_FORMAT": "json",
        **{f"HIVEWIRE_{k.upper()}_METRICS_PORT": str(v) for k, v in metrics_ports.items()},
    }
    cmd = [
        sys.executable, "-m", "hivewire.cli", "up", "--demo",
        "--redis-port", str(ports["redis"]),
        "--data-dir", str(tmp_path_factory.mktemp("hivewire-otel")),
        "--gateway-addr", addr["gateway"],
        "--registry-addr", addr["registry"],
        "--coordinator-addr", addr["coordinator"],
    ]  # fmt: skip
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    stack = Stack(
        addr["gateway"],
        addr["registry"],
        addr["coordinator"],
        f"redis://127.0.0.1:{ports['redis']}/0",
        process,
    )
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line)
            if READY in line:
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"stack did not start:\n{stack.log()}")
    try:
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(5)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in stack.env().items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-m", "hivewire.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def one(spans: list[SpanRecord], **want: object) -> SpanRecord:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in want.items())]
    assert len(found) == 1, (want, [(s.service, s.name, s.kind) for s in spans])
    return found[0]
