"""The Prometheus /metrics HTTP endpoint of a process (services and agents alike)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import start_http_server

from hivewire.core.addr_file import bound_addr

logger = logging.getLogger(__name__)

# The configured metrics port that asks for any free port (the OS picks it; the process reports
# it in its address file). 0 keeps meaning "no /metrics".
ANY_PORT = -1


@dataclass
class MetricsServer:
    """A running /metrics endpoint on `host:port` (the port bound); `close()` is idempotent."""

    host: str
    port: int
    _server: Any = None
    _thread: threading.Thread | None = None

    @property
    def addr(self) -> str:
        """Where to dial it (a wildcard host becomes 127.0.0.1)."""
        return bound_addr(f"{self.host}:{self.port}", self.port)

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def start_metrics_server(port: int, host: str) -> MetricsServer | None:
    """Serve /metrics on host:port from a thread: port 0 disables it (returns None), ANY_PORT
    binds a free port (read it from the result)."""
    if port == 0:
        return None
    if port < ANY_PORT or port > 65535:
        raise ValueError(f"metrics port {port} is neither a port, 0 (off) nor {ANY_PORT} (any)")
    server, thread = start_http_server(max(port, 0), addr=host)
    bound = int(server.server_port)
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, server, thread)
