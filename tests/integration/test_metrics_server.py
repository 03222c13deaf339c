"""The /metrics endpoint: serves Prometheus text, and closes at once though it never polls."""

from __future__ import annotations

import time
import urllib.request

import pytest

from hivewire.core.metrics_server import ANY_PORT, start_metrics_server
from tests.up import addr_open


def test_serves_metrics_then_closes_at_once() -> None:
    server = start_metrics_server(ANY_PORT, "127.0.0.1")
    assert server is not None
    with urllib.request.urlopen(f"http://{server.addr}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert b"# TYPE" in resp.read()
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 2.0  # woken, not waiting out a poll or a timeout
    assert not addr_open(server.addr)
    server.close()  # idempotent


def test_port_zero_serves_nothing_and_a_bad_port_is_refused() -> None:
    assert start_metrics_server(0, "127.0.0.1") is None
    with pytest.raises(ValueError):
        start_metrics_server(70000, "127.0.0.1")
