"""The Prometheus /metrics HTTP endpoint of a process (services and agents alike).

Served from a thread that blocks until a request comes (prometheus_client's own server wakes
twice a second to look for a stop): idle, it costs nothing, and `close()` wakes it with a
connection of its own, so a stop never waits for a poll.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from hivewire.core.addr_file import bound_addr

logger = logging.getLogger(__name__)

# The configured metrics port that asks for any free port (the OS picks it; the process reports
# it in its address file). 0 keeps meaning "no /metrics".
ANY_PORT = -1
CLOSE_WAIT_S = 5.0
WAKE_EVERY_S = 0.05


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """A scrape every few seconds is not worth a log line."""


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
        if server is None:
            return
        stopping = threading.Thread(target=server.shutdown, name="metrics-stop", daemon=True)
        stopping.start()
        host, port = self.addr.rsplit(":", 1)
        # The serving thread blocks until a request comes: connect until it has seen the stop.
        deadline = time.monotonic() + CLOSE_WAIT_S
        while stopping.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            stopping.join(WAKE_EVERY_S)
        server.server_close()
        if self._thread is not None:
            self._thread.join(CLOSE_WAIT_S)


def start_metrics_server(port: int, host: str) -> MetricsServer | None:
    """Serve /metrics on host:port from a thread: port 0 disables it (returns None), ANY_PORT
    binds a free port (read it from the result)."""
    if port == 0:
        return None
    if port < ANY_PORT or port > 65535:
        raise ValueError(f"metrics port {port} is neither a port, 0 (off) nor {ANY_PORT} (any)")
    info = socket.getaddrinfo(host, max(port, 0), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, bind_host = info[0][0], str(info[0][4][0])
    server_class = type("MetricsHTTPServer", (ThreadingWSGIServer,), {"address_family": family})
    server: ThreadingWSGIServer = make_server(
        bind_host, max(port, 0), make_wsgi_app(), server_class, _Quiet
    )
    # poll_interval None: the thread sleeps in select() until a request (or close()) comes.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": None}, name="metrics", daemon=True
    )
    thread.start()
    bound = int(server.server_port)
    logger.info("metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, server, thread)
