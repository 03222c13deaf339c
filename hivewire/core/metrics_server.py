"""The Prometheus /metrics HTTP endpoint of a process (services and agents alike)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)


@dataclass
class MetricsServer:
    """A running /metrics endpoint; `close()` stops it (idempotent)."""

    port: int
    _server: Any = None
    _thread: threading.Thread | None = None

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def start_metrics_server(port: int, host: str) -> MetricsServer | None:
    """Serve /metrics on host:port from a thread; port 0 disables it (returns None)."""
    if port <= 0:
        return None
    server, thread = start_http_server(port, addr=host)
    logger.info("metrics on http://%s:%d/metrics", host, port)
    return MetricsServer(port, server, thread)
