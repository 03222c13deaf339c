"""The address file a service writes once serving, so a parent can start it on port 0."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def bound_addr(listen: str, port: int) -> str:
    """`listen` with its port replaced by the one bound: an address others can dial."""
    host = listen.rpartition(":")[0]
    if host in ("", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def write_addr_file(path: Path, addr: str) -> None:
    """Write `addr` atomically (rename): a reader sees no file or the whole line."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(addr + "\n")
    os.replace(tmp, path)


def read_addr_file(path: Path) -> str | None:
    """The address in `path`, None while there is none."""
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def remove_addr_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
