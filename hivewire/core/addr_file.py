"""The address file a process writes once serving, so a parent can start it on port 0.

Line one is the process's gRPC address (empty for a process without one, like an agent); each
further line names another endpoint it bound, `name=host:port` (`metrics=` for /metrics).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

METRICS = "metrics"


def bound_addr(listen: str, port: int) -> str:
    """`listen` with its port replaced by the one bound: an address others can dial."""
    host = listen.rpartition(":")[0]
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def write_addr_file(path: Path, addr: str, **endpoints: str | None) -> None:
    """Write `addr` and the named `endpoints` (None: not bound) atomically (rename): a reader
    sees no file or all of it."""
    named = [f"{name}={value}" for name, value in endpoints.items() if value]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join([addr, *named]) + "\n")
    os.replace(tmp, path)


def read_addr_file(path: Path, endpoint: str = "") -> str | None:
    """The gRPC address in `path`, or the one of the named `endpoint`; None while there is none."""
    try:
        first, *named = path.read_text().splitlines() or [""]
    except FileNotFoundError:
        return None
    if not endpoint:
        return first.strip() or None
    values = dict(line.partition("=")[::2] for line in named)
    return values.get(endpoint, "").strip() or None


def remove_addr_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
