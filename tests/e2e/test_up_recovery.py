"""`hivewire up --demo` under kill -9 of the coordinator, a demo agent, the gateway and Redis, each
with tasks in flight: every child comes back on its address, every task ends SUCCEEDED once."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest

from hivewire.cli.readiness import running_addrs
from hivewire.client import TERMINAL_STATES, Client, task_to_dict
from hivewire.core.addr_file import METRICS
from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import create_redis
from tests.e2e.conftest import Stack, hivewire_up
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

T = TypeVar("T")

# Killed in this order, each once the one before is back.
KILLED = ("coordinator", "demo-1", "gateway", "redis")
SLEEP_SECONDS = 3.0  # long enough to be surely running when its agent is killed
RECOVERY = 120.0  # an agent's lease (15 s) must run out before its tasks are re-queued


async def unless_unavailable(call: Callable[[], Awaitable[T]]) -> T | None:
    """The call's result, or None while the gateway (or what it fronts) is restarting."""
    try:
        return await call()
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None


class Tasks:
    """Every task submitted, with the result it must end with."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.expected: dict[str, object] = {}

    async def submit(self, capability: str, payload: dict[str, object], key: str) -> str:
        """Submit, again while UNAVAILABLE: the request id makes a repeat return the same task."""

        async def attempt() -> str | None:
            task = await unless_unavailable(
                lambda: self.client.submit(capability, payload, request_id=key)
            )
            return task.task_id if task else None

        return await eventually(attempt, within=RECOVERY, interval=0.2, message=key)

    async def round(self, tag: str) -> list[str]:
        """Three sleep tasks (only demo-1 runs them) and three echo tasks; the sleep task ids."""
        sleeps = []
        for n in range(3):
            task_id = await self.submit("sleep", {"seconds": SLEEP_SECONDS}, f"{tag}-sleep-{n}")
            self.expected[task_id] = {"slept": SLEEP_SECONDS}
            sleeps.append(task_id)
        for n in range(3):
            payload = {"tag": tag, "n": n}
            self.expected[await self.submit("echo", payload, f"{tag}-echo-{n}")] = payload
        return sleeps

    async def get(self, task_id: str) -> task_pb2.Task | None:
        return await unless_unavailable(lambda: self.client.get(task_id))

    async def running(self, task_ids: list[str]) -> bool:
        return any(t and t.state == task_pb2.TASK_STATE_RUNNING for t in await self.all(task_ids))

    async def all(self, task_ids: list[str]) -> list[task_pb2.Task | None]:
        return [await self.get(task_id) for task_id in task_ids]


def pid(data_dir: Path, name: str) -> int:
    return int((data_dir / "run" / f"{name}.pid").read_text())


async def kill_and_wait_back(stack: Stack, data_dir: Path, name: str) -> None:
    """kill -9 `name`; until the supervisor says it is back, on the same address."""
    addrs = running_addrs(data_dir), running_addrs(data_dir, METRICS)
    back = f"[hivewire] {name} is back (pid "
    seen = "".join(stack.output).count(back)
    old = pid(data_dir, name)
    os.kill(old, signal.SIGKILL)
    await eventually(
        lambda: "".join(stack.output).count(back) > seen, within=RECOVERY, message=back
    )
    assert pid(data_dir, name) != old
    assert f"{back}{pid(data_dir, name)})" in "".join(stack.output)
    assert (running_addrs(data_dir), running_addrs(data_dir, METRICS)) == addrs


async def test_up_restarts_what_is_killed_and_every_task_succeeds_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # /metrics on any free port: a restart must keep that port too.
    env = {**os.environ, "HIVEWIRE_GATEWAY_METRICS_PORT": "-1"}
    env["HIVEWIRE_COORDINATOR_METRICS_PORT"] = "-1"
    with hivewire_up(data_dir, env) as stack:
        async with Client(stack.gateway) as client:
            tasks = Tasks(client)
            in_flight: dict[str, list[str]] = {}
            for name in KILLED:
                sleeps = await tasks.round(f"before-{name}")
                await eventually(lambda s=sleeps: tasks.running(s), within=RECOVERY)
                in_flight[name] = sleeps
                await kill_and_wait_back(stack, data_dir, name)
            await tasks.round("after-all")

            async def all_ended() -> list[task_pb2.Task]:
                found = await tasks.all(list(tasks.expected))
                assert all(t and t.state in TERMINAL_STATES for t in found), found
                return [t for t in found if t]

            ended = await eventually(all_ended, within=RECOVERY, interval=0.5)
        redis = create_redis(stack.admin_url)
        try:
            entries = await redis.xrange(Keys().events)
        finally:
            await redis.aclose()
    assert stack.process.returncode == 0, stack.log()

    for task in ended:
        body = task_to_dict(task)
        assert body["state"] == "SUCCEEDED", json.dumps(body)
        assert body["result"] == tasks.expected[task.task_id], json.dumps(body)
    # Applied once: exactly one SUCCEEDED event per task, however many attempts it took.
    events = [decode_entry(i, f) for i, f in entries]
    succeeded = Counter(e.task_id for e in events if e.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED)
    assert succeeded == dict.fromkeys(tasks.expected, 1)
    # The sleep tasks running on demo-1 when it was killed needed another attempt.
    attempts = {t.task_id: t.attempt for t in ended}
    assert max(attempts[t] for t in in_flight["demo-1"]) >= 2, attempts
    output = "".join(stack.output)
    for name in KILLED:
        assert f"[hivewire] {name} exited with -9 (signal SIGKILL); restarting in" in output
