"""`hivewire up --demo --hooks-file` as a real process tree: a hook fires on a real task."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.cli.redis_users import running_admin_url
from hivewire.client import Client
from hivewire.v1 import event_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis, create_redis
from tests.integration.hooks_helpers import HOOK_TYPES
from tests.integration.test_supervisor import READY, read_until
from tests.up import addr_open, still_running, stop_up, up_pids
from tests.waiting import eventually


async def hook_events(redis: Redis) -> list[event_pb2.Event]:
    """Hook outcomes in the events stream of the default namespace `hivewire up` uses."""
    entries = await redis.xrange(Keys().events)
    return [e for e in (decode_entry(i, f) for i, f in entries) if e.type in HOOK_TYPES]


async def nothing_pending(redis: Redis) -> bool:
    return int((await redis.xpending(Keys().events, HOOKS_GROUP))["pending"]) == 0


async def test_up_with_a_hooks_file_runs_the_hooks_runner(tmp_path: Path) -> None:
    out = tmp_path / "succeeded.txt"
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(
        "hooks:\n"
        "  - name: count-words\n"
        "    on: task.succeeded\n"
        "    filter: {capability: wordcount}\n"
        f"    command: [sh, -c, 'echo $HIVEWIRE_TASK_ID >> {out}']\n"
    )
    env = {**os.environ, "HIVEWIRE_HOOKS_ADDR": "127.0.0.1:0"}
    proc = await asyncio.create_subprocess_exec(
        *up_command(tmp_path / "data", "--demo", "--hooks-file", str(hooks)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[bytes] = []
    try:
        await asyncio.wait_for(read_until(proc.stdout, READY, seen), 90)
        addrs = running_addrs(tmp_path / "data")
        assert addr_open(addrs["hooks"])
        pids = up_pids(tmp_path / "data")
        async with Client(addrs["gateway"]) as client:
            # echo first: the runner reads events in order, so once the wordcount hook has
            # settled and nothing is pending, an echo hook (if the filter let one through) ran.
            await client.submit_and_wait("echo", {"not": "counted"}, timeout=30)
            task = await client.submit_and_wait("wordcount", {"text": "a b a"}, timeout=30)
        redis = create_redis(running_admin_url(tmp_path / "data", addrs["redis"]))
        try:
            [event] = await eventually(lambda: hook_events(redis))
            await eventually(lambda: nothing_pending(redis))
        finally:
            await redis.aclose()
        assert event.type == event_pb2.EVENT_TYPE_HOOK_SUCCEEDED
        assert (event.task_id, event.capability) == (task.task_id, "wordcount")
        assert out.read_text().split() == [task.task_id]
        proc.send_signal(signal.SIGTERM)
        seen.append(await asyncio.wait_for(proc.stdout.read(), 60))
        assert await proc.wait() == 0, b"".join(seen).decode(errors="replace")
    finally:
        await stop_up(proc)
    output = b"".join(seen).decode(errors="replace")
    assert "[hooks] " in output and "hooks runner stopped" in output
    assert not still_running(pids)


def test_up_refuses_an_invalid_hooks_file(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text("hooks:\n  - name: x\n    on: task.fialed\n    command: [true]\n")
    done = subprocess.run(
        [sys.executable, "-m", "hivewire.cli", "up", "--hooks-file", str(hooks),
         "--redis-port", "0", "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "hooks[0] (x).on: unknown event type 'task.fialed'" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing was started
