"""`hivewire up --demo` as a real process tree: ready banner, a task end to end, ordered stop."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from pathlib import Path

from hivewire.cli.embedded_redis import free_port
from hivewire.client import Client, task_to_dict

READY = b"hivewire is ready"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def read_until(stream: asyncio.StreamReader, marker: bytes, seen: list[bytes]) -> None:
    while line := await stream.readline():
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(b"".join(seen).decode(errors="replace"))


async def test_up_demo_runs_a_task_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("redis", "gateway", "registry", "coordinator")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hivewire.cli", "up", "--demo",
        "--redis-port", str(ports["redis"]),
        "--data-dir", str(tmp_path / "data"),
        "--gateway-addr", f"127.0.0.1:{ports['gateway']}",
        "--registry-addr", f"127.0.0.1:{ports['registry']}",
        "--coordinator-addr", f"127.0.0.1:{ports['coordinator']}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[bytes] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, READY, seen), 60)
        async with Client(f"127.0.0.1:{ports['gateway']}") as client:
            task = await client.submit_and_wait("wordcount", {"text": "a b a"}, timeout=30)
        body = task_to_dict(task)
        assert body["state"] == "SUCCEEDED", json.dumps(body)
        assert body["result"] == {"words": 3, "counts": {"a": 2, "b": 1}}
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        seen.append(rest)
        assert await proc.wait() == 0, b"".join(seen).decode(errors="replace")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = b"".join(seen).decode(errors="replace")
    for prefix in ("[registry] ", "[coordinator] ", "[gateway] ", "[demo-1] ", "[demo-2] "):
        assert prefix in output
    assert not any(port_open(p) for p in ports.values())
    assert (tmp_path / "data").is_dir()
