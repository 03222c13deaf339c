"""The whole stack as real processes: `hivewire up --demo` on free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hivewire.cli.embedded_redis import free_port

READY = "hivewire is ready"


@dataclass
class Stack:
    gateway: str
    registry: str
    coordinator: str
    redis_url: str
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HIVEWIRE_GATEWAY_ADDR": self.gateway,
            "HIVEWIRE_REGISTRY_ADDR": self.registry,
            "HIVEWIRE_COORDINATOR_ADDR": self.coordinator,
            "HIVEWIRE_REDIS_URL": self.redis_url,
        }

    def log(self) -> str:
        return "".join(self.output[-200:])


@contextlib.contextmanager
def hivewire_up(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """`hivewire up --demo` on free ports as a subprocess; stopped with SIGINT (Ctrl-C) after."""
    ports = {name: free_port() for name in ("redis", "gateway", "registry", "coordinator")}
    addr = {k: f"127.0.0.1:{v}" for k, v in ports.items()}
    cmd = [
        sys.executable, "-m", "hivewire.cli", "up", "--demo",
        "--redis-port", str(ports["redis"]),
        "--data-dir", str(data_dir),
        "--gateway-addr", addr["gateway"],
        "--registry-addr", addr["registry"],
        "--coordinator-addr", addr["coordinator"],
    ]  # fmt: skip
    process = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    )
    stack = Stack(
        addr["gateway"],
        addr["registry"],
        addr["coordinator"],
        f"redis://127.0.0.1:{ports['redis']}/0",
        process,
    )
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.output.append(line)
            if READY in line:
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + 90
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"stack did not start:\n{stack.log()}")
    try:
        yield stack
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with hivewire_up(tmp_path_factory.mktemp("hivewire-data")) as s:
        yield s
