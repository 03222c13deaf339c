"""`python -m hivewire_services.hooks` as a real process: kill -9 and SIGTERM lose no delivery."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from pathlib import Path

from hivewire.core.clock import now_ms
from hivewire.v1 import event_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.hooks.deliveries import delivery_id
from tests.integration.hooks_helpers import (
    HOOK_TYPES,
    emit,
    events_of,
    hooks_pending,
    runner_process,
)
from tests.settings import StackSettings
from tests.waiting import eventually

FAILED = event_pb2.EVENT_TYPE_TASK_FAILED


def hooks_file(tmp_path: Path, timeout: float) -> Path:
    runs, gate, done = tmp_path / "runs", tmp_path / "gate", tmp_path / "done"
    script = (
        f'echo "$HIVEWIRE_TASK_ID" >> {runs}; '
        f"while [ ! -f {gate} ]; do sleep 0.05; done; "
        f'echo "$HIVEWIRE_TASK_ID" >> {done}'
    )
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - name: record\n"
        "    on: task.failed\n"
        f"    command: {{argv: [sh, -c, '{script}'], timeout: {timeout}}}\n"
    )
    return path


def read_ids(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_kill_9_mid_hook_then_restart_loses_nothing(
    settings: StackSettings, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    hooks, log = hooks_file(tmp_path, timeout=3), []
    tasks = [uuid.uuid4().hex for _ in range(10)]
    async with runner_process(settings, hooks, log) as first:
        for t in tasks[:6]:
            await emit(redis, keys, FAILED, task_id=t, capability="x")
        # Two hook runs are stuck at the gate (concurrency 2), four deliveries wait.
        await eventually(lambda: _has(len(read_ids(tmp_path / "runs")) == 2))
        first.kill()
        await first.wait()
    for t in tasks[6:]:  # emitted while no runner is alive
        await emit(redis, keys, FAILED, task_id=t, capability="x")
    (tmp_path / "gate").touch()
    async with runner_process(settings, hooks, log) as second:
        outcomes = await eventually(lambda: _hook_events(redis, keys, 10), within=90)
        await eventually(lambda: _none_pending(redis, keys))
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0, b"".join(log).decode()
    assert sorted(e.task_id for e in outcomes) == sorted(tasks)  # exactly one outcome each
    assert {e.type for e in outcomes} == {event_pb2.EVENT_TYPE_HOOK_SUCCEEDED}
    # At least once: the two runs the dead runner left were run again by the new one.
    runs = Counter(read_ids(tmp_path / "runs"))
    assert sorted(runs.values()) == [1] * 8 + [2] * 2, b"".join(log).decode()
    assert set(read_ids(tmp_path / "done")) == set(tasks)
    assert len(await redis.zrange(keys.hook_due, 0, -1)) == 0


async def test_sigterm_hands_running_hooks_back(
    settings: StackSettings, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    hooks, log = hooks_file(tmp_path, timeout=60), []
    task = uuid.uuid4().hex
    async with runner_process(settings, hooks, log) as proc:
        entry = await emit(redis, keys, FAILED, task_id=task, capability="x")
        await eventually(lambda: _has(read_ids(tmp_path / "runs") == [task]))
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, b"".join(log).decode()
    did = delivery_id(entry, "record")
    # Handed back: due now (not after its 65 s lease) and the cut-short attempt not counted.
    score = await redis.zscore(keys.hook_due, did)
    assert score is not None and score <= now_ms()
    assert await redis.hget(keys.hook_delivery(did), "attempt") == b"0"
    assert await events_of(redis, keys, *HOOK_TYPES) == []
    assert await hooks_pending(redis, keys) == 1


async def _hook_events(redis: Redis, keys: Keys, n: int) -> list[event_pb2.Event]:
    events = await events_of(redis, keys, *HOOK_TYPES)
    return events if len(events) >= n else []


async def _has(value: bool) -> bool:
    return value


async def _none_pending(redis: Redis, keys: Keys) -> bool:
    return await hooks_pending(redis, keys) == 0
