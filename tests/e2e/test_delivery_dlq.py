"""Poison tasks, the dead-letter stream, `hivewire dlq`, and the gateway's DLQ RPCs, against
real registry, coordinator, gateway and agent processes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hivewire.client import Client
from hivewire.v1 import task_pb2
from tests.e2e.delivery_stack import Processes, while_unavailable
from tests.settings import StackSettings
from tests.waiting import eventually

pytestmark = pytest.mark.e2e

FAILED = task_pb2.TASK_STATE_FAILED
SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED


@pytest.fixture
async def stack(settings: StackSettings, tmp_path: Path) -> AsyncIterator[tuple[Processes, str]]:
    p = Processes(settings, tmp_path, {})
    await p.start_registry()
    await p.start_coordinator()
    gateway = await p.start_gateway()
    p.start_agent("a")
    yield p, gateway
    p.close()


async def until_done(client: Client, task_id: str, within: float = 40) -> task_pb2.Task:
    async def done() -> tuple[task_pb2.Task]:
        task = await while_unavailable(lambda: client.get(task_id))
        assert task.state in (SUCCEEDED, FAILED), f"task is {task_pb2.TaskState.Name(task.state)}"
        return (task,)

    return (await eventually(done, within=within, message="the task finished"))[0]


def cli(gateway: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivewire.cli", "--addr", gateway, "dlq", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def submit(client: Client, capability: str, payload: object, **kw: object) -> task_pb2.Task:
    return await while_unavailable(lambda: client.submit(capability, payload, **kw))  # type: ignore[arg-type]


async def test_poison_task_is_dead_lettered_while_others_flow_then_retried(
    stack: tuple[Processes, str],
) -> None:
    procs, gateway = stack
    async with Client(gateway) as client:
        poison = await submit(client, "poison", {}, max_attempts=3)
        others = [await submit(client, "sleep", {"secs": 0.05}) for _ in range(10)]
        for task in others:
            assert (await until_done(client, task.task_id)).state == SUCCEEDED
        dead = await until_done(client, poison.task_id)
        assert (dead.state, dead.attempt) == (FAILED, 3), procs.logs()
        [letter], token = await client.list_dead_letters()
        assert token == ""
        assert letter.task.task_id == poison.task_id
        assert [e.attempt for e in letter.errors] == [1, 2, 3]
        assert all("poison pill" in e.error for e in letter.errors)

        listed = cli(gateway, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [row] = json.loads(listed.stdout)
        assert row["dead_letter_id"] == letter.dead_letter_id
        assert len(row["errors"]) == 3

        retried = cli(gateway, "retry", letter.dead_letter_id)
        assert retried.returncode == 0, retried.stderr
        assert "PENDING" in retried.stdout
        again = await until_done(client, poison.task_id)
        # A fresh budget of three attempts; attempt numbers keep counting up.
        assert (again.state, again.attempt, again.max_attempts) == (FAILED, 6, 6)
        [second], _ = await client.list_dead_letters()
        assert second.dead_letter_id != letter.dead_letter_id
        assert [e.attempt for e in second.errors] == [1, 2, 3, 4, 5, 6]

    gone = cli(gateway, "retry", letter.dead_letter_id)
    assert gone.returncode == 2 and "NOT_FOUND" in gone.stderr
    bad = cli(gateway, "retry", "not-an-id")
    assert bad.returncode == 2 and "INVALID_ARGUMENT" in bad.stderr
    assert "dead_letter_id" in bad.stderr
