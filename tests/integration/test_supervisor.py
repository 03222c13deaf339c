"""`hivewire up --demo` as a real process tree: ready banner, a task end to end, ordered stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from pathlib import Path

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.client import Client, task_to_dict
from hivewire.core.addr_file import METRICS
from hivewire.core.metrics_server import ANY_PORT
from tests.up import still_running, stop_up, up_pids

READY = b"hivewire is ready"


async def read_until(stream: asyncio.StreamReader, marker: bytes, seen: list[bytes]) -> None:
    while line := await stream.readline():
        seen.append(line)
        if marker in line:
            return
    raise AssertionError(b"".join(seen).decode(errors="replace"))


def scrape(addr: str) -> str:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


async def test_up_demo_runs_a_task_and_stops_cleanly(tmp_path: Path) -> None:
    # /metrics on any free port for two services, none for the coordinator.
    any_port = str(ANY_PORT)
    env = {
        **os.environ,
        "HIVEWIRE_GATEWAY_METRICS_PORT": any_port,
        "HIVEWIRE_REGISTRY_METRICS_PORT": any_port,
        "HIVEWIRE_COORDINATOR_METRICS_PORT": "0",
    }
    proc = await asyncio.create_subprocess_exec(
        *up_command(tmp_path / "data", "--demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert proc.stdout is not None
    seen: list[bytes] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, READY, seen), 60)
        addrs = running_addrs(tmp_path / "data")
        assert set(addrs) == {"redis", "gateway", "registry", "coordinator"}
        pids = up_pids(tmp_path / "data")
        assert {"redis", "gateway", "registry", "coordinator", "demo-1", "demo-2"} <= set(pids)
        metrics = running_addrs(tmp_path / "data", METRICS)
        assert set(metrics) == {"gateway", "registry"}
        assert "hivewire_agents" in await asyncio.to_thread(scrape, metrics["registry"])
        assert "hivewire_rpc_duration_seconds" in await asyncio.to_thread(
            scrape, metrics["gateway"]
        )
        async with Client(addrs["gateway"]) as client:
            task = await client.submit_and_wait("wordcount", {"text": "a b a"}, timeout=30)
        body = task_to_dict(task)
        assert body["state"] == "SUCCEEDED", json.dumps(body)
        assert body["result"] == {"words": 3, "counts": {"a": 2, "b": 1}}
        proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stdout.read(), 60)
        seen.append(rest)
        assert await proc.wait() == 0, b"".join(seen).decode(errors="replace")
    finally:
        await stop_up(proc)
    output = b"".join(seen).decode(errors="replace")
    for prefix in ("[registry] ", "[coordinator] ", "[gateway] ", "[demo-1] ", "[demo-2] "):
        assert prefix in output
    assert not still_running(pids)
    assert (tmp_path / "data").is_dir()
