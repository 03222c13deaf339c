"""Loopback addresses for tests: whether one is open, and one that refuses connections."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def addr_open(addr: str) -> bool:
    """Whether something accepts connections at host:port."""
    host, _, port = addr.rpartition(":")
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


@contextlib.contextmanager
def refusing_addr() -> Iterator[str]:
    """A loopback address where nothing listens, reserved while in use: a socket bound to it
    that never listens, so connections are refused and no other server can take the port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"
