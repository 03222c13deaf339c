"""Loopback addresses for tests: whether one is open, and one that refuses connections; how a
test stops a `hivewire up` it started, and whether the processes it ran are gone."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

# A supervisor stops its children in order on SIGTERM; SIGKILL would leave them running (each
# child is in a process group of its own), so a failed test would leak a whole stack.
STOP_WITHIN = 60.0


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


async def stop_up(proc: asyncio.subprocess.Process) -> None:
    """Stop a `hivewire up` subprocess that may still run (a test failed before stopping it):
    SIGTERM, so it stops its children, and SIGKILL only if it does not exit in STOP_WITHIN."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_WITHIN)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def up_pids(data_dir: Path) -> dict[str, int]:
    """The processes a running `hivewire up` started, by name (its run/<name>.pid files)."""
    return {f.stem: int(f.read_text()) for f in (data_dir / "run").glob("*.pid")}


def still_running(pids: Mapping[str, int]) -> list[str]:
    """The names whose process is still there (an exited one not yet reaped counts as gone).

    Tests check this rather than that nothing listens at a stopped service's address: another
    test running at the same time may be given that port once it is free again.
    """
    running = []
    for name, pid in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        if stat.rpartition(")")[2].split()[0] != "Z":
            running.append(name)
    return running
