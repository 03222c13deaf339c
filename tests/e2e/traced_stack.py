"""The traced stack for end-to-end telemetry tests: `hivewire up --demo` exporting spans to an
in-process OTLP collector, with every service's /metrics on a port it binds and reports."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from hivewire.core.metrics_server import ANY_PORT
from tests.e2e.conftest import Stack, hivewire_up
from tests.e2e.otel_collector import Collector, SpanRecord

SERVICES = ("GATEWAY", "REGISTRY", "COORDINATOR")


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[Stack]:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "HIVEWIRE_RETRY_INITIAL_BACKOFF": "0.2",
        "HIVEWIRE_LOG_FORMAT": "json",
        **{f"HIVEWIRE_{k}_METRICS_PORT": str(ANY_PORT) for k in SERVICES},
    }
    with hivewire_up(tmp_path_factory.mktemp("hivewire-otel"), env) as stack:
        yield stack


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
