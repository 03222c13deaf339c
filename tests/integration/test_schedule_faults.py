"""Two coordinator processes fire a 1 s schedule: each tick once, across a kill -9 and restart."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from hivewire.core.addr_file import read_addr_file, remove_addr_file
from hivewire_services.common.config import env_name
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.conftest import MakeStack
from tests.integration.schedule_helpers import assert_consecutive, scheduled_ticks
from tests.integration.stack import Stack
from tests.settings import StackSettings
from tests.waiting import eventually


def _spawn(settings: StackSettings, addr_file: Path) -> subprocess.Popen[bytes]:
    """A coordinator process on any loopback port, reporting its address in `addr_file`."""
    values = {
        "redis_url": settings.redis_url,
        "namespace": settings.namespace,
        "registry_addr": settings.registry_addr,
        "coordinator_addr": "127.0.0.1:0",
        "schedule_interval": "1.0",
        "log_level": "WARNING",
    }
    env = {**os.environ, **{env_name(k): v for k, v in values.items()}}
    env["HIVEWIRE_ADDR_FILE"] = str(addr_file)
    remove_addr_file(addr_file)
    return subprocess.Popen([sys.executable, "-m", "hivewire_services.coordinator"], env=env)


async def _reported(proc: subprocess.Popen[bytes], addr_file: Path) -> str:
    def addr() -> str | None:
        assert proc.poll() is None, f"coordinator exited with {proc.returncode}"
        return read_addr_file(addr_file)

    return await eventually(addr, within=60, message="the coordinator's address")


@pytest.fixture
async def outside(make_stack: MakeStack) -> Stack:
    """Registry in this process; coordinators and gateway are the test's to run."""
    return await make_stack(coordinator=False, gateway=False)


@pytest.mark.timeout(120)
async def test_two_coordinators_fire_each_tick_once_across_kill_9(
    outside: Stack, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    settings = dataclasses.replace(outside.settings)
    procs: list[subprocess.Popen[bytes]] = []

    async def start(tag: str) -> str:
        proc = _spawn(settings, tmp_path / f"{tag}.addr")
        procs.append(proc)
        return await _reported(proc, tmp_path / f"{tag}.addr")

    async def fired_more(than: int) -> list[int]:
        ticks = await scheduled_ticks(redis, keys, "beat")
        assert len(ticks) >= than + 3
        return ticks

    try:
        addr_a = await start("a")
        await outside.start_gateway(coordinator_addr=addr_a)

        async def created() -> bool:
            try:
                await outside.client.create_schedule(
                    "beat", every=1.0, capability="noop", overlap="allow-all"
                )
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.ALREADY_EXISTS
            return True

        await eventually(created, within=30, message="the schedule created")
        await start("b")
        ticks = await eventually(lambda: fired_more(0), within=20)

        procs[0].send_signal(signal.SIGKILL)  # A dies: B alone keeps the grid
        procs[0].wait()
        ticks = await eventually(lambda: fired_more(len(ticks)), within=20)

        await start("a2")  # A is back, then B dies: A2 carries on
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        ticks = await eventually(lambda: fired_more(len(ticks)), within=20)
        assert_consecutive(ticks)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
