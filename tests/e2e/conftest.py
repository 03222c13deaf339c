"""The whole stack as real processes: `hivewire up --demo` on free ports."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.cli.redis_users import running_admin_url
from hivewire.core.addr_file import METRICS
from hivewire_services.common.redis import Redis
from tests.e2e.delivery_stack import Driver, Processes
from tests.settings import StackSettings

READY = "hivewire is ready"


@dataclass
class Stack:
    gateway: str
    registry: str
    coordinator: str
    redis_url: str  # what agents get (no user: the registry makes theirs)
    process: subprocess.Popen[str]
    admin_url: str = ""  # the test's own look inside Redis
    output: list[str] = field(default_factory=list)
    # /metrics addresses of the services that serve one (metrics port -1: reported, not picked).
    metrics: dict[str, str] = field(default_factory=dict)

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
def hivewire_up(
    data_dir: Path,
    env: dict[str, str] | None = None,
    *,
    args: tuple[str, ...] = ("--demo",),
    gateway_addr: str = "127.0.0.1:0",
) -> Iterator[Stack]:
    """`hivewire up --demo` (or `args`) on port 0 (every service and Redis) as a subprocess; the
    addresses are the ones the services report in the data directory. Stopped with SIGINT after."""
    process = subprocess.Popen(
        up_command(data_dir, *args, gateway_addr=gateway_addr),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
    )
    stack = Stack("", "", "", "", process)
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
    addrs = running_addrs(data_dir)
    stack.gateway, stack.registry = addrs["gateway"], addrs["registry"]
    stack.coordinator, stack.redis_url = addrs["coordinator"], f"redis://{addrs['redis']}/0"
    stack.admin_url = running_admin_url(data_dir, addrs["redis"])
    stack.metrics = running_addrs(data_dir, METRICS)
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


@pytest.fixture
async def procs(
    settings: StackSettings, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Processes]:
    """Registry and coordinator processes with the short leases of delivery_stack.FAST, or the
    HIVEWIRE_LEASE_SECONDS a test's `lease` mark sets; every process must end cleanly."""
    marker = request.node.get_closest_marker("lease")
    extra = {"HIVEWIRE_LEASE_SECONDS": str(marker.args[0])} if marker else {}
    p = Processes(settings, tmp_path, extra)
    await p.start_registry()
    await p.start_coordinator()
    yield p
    p.close()
    assert p.unclean == [], p.logs()


@pytest.fixture
async def driver(procs: Processes, redis: Redis, settings: StackSettings) -> AsyncIterator[Driver]:
    d = Driver(redis, settings, procs.coordinators[0])
    yield d
    await d.close()
