"""Process-level observability of an agent run by `run_agent`: tracing and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hivewire.core.defaults import env

logger = logging.getLogger(__name__)


@contextmanager
def observed_process() -> Iterator[None]:
    """Tracing as `hivewire-agent` (when OTEL_* ask) and /metrics on HIVEWIRE_AGENT_METRICS_PORT
    (bound to HIVEWIRE_METRICS_HOST, default 127.0.0.1; reported in HIVEWIRE_ADDR_FILE if set);
    spans are flushed on the way out."""
    from hivewire.core.addr_file import remove_addr_file, write_addr_file
    from hivewire.core.metrics_server import start_metrics_server
    from hivewire.core.telemetry import setup_tracing, shutdown_tracing

    setup_tracing("agent")
    raw_port = env("AGENT_METRICS_PORT", "0")
    try:
        port = int(raw_port)
    except ValueError as exc:
        raise ValueError(f"HIVEWIRE_AGENT_METRICS_PORT={raw_port!r} is not a port") from exc
    host = env("METRICS_HOST", "127.0.0.1")
    try:
        server = start_metrics_server(port, host)
    except OSError as exc:  # e.g. two agents on one host with the same setting
        logger.warning("agent /metrics not served: cannot bind %s:%d (%s)", host, port, exc)
        server = None
    raw_file = env("ADDR_FILE", "")
    addr_file = Path(raw_file) if raw_file and server is not None else None
    if addr_file is not None and server is not None:
        write_addr_file(addr_file, "", metrics=server.addr)  # an agent has no gRPC address
    try:
        yield
    finally:
        if addr_file is not None:
            remove_addr_file(addr_file)
        if server is not None:
            server.close()
        shutdown_tracing()
