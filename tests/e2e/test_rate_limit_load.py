"""A rate limit under load with real processes: starts per window stay within the limit, the
waiting tasks start as soon as the next window opens, and the coordinator does not spin."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from hivewire.v1 import flow_pb2, task_pb2
from tests.e2e.delivery_stack import Driver, Processes

pytestmark = pytest.mark.e2e

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
WINDOW_MS = 1000
LIMIT = 4


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_rate_limit_holds_per_window_without_spinning(
    procs: Processes, driver: Driver
) -> None:
    procs.start_agent("a", concurrency=16)
    await driver.agent_id("a")
    limit = flow_pb2.RateLimit(name="openai", limit=LIMIT * 1500)
    limit.window.FromMilliseconds(WINDOW_MS)
    await driver.stub.SetRateLimit(
        flow_pb2.CoordinatorServiceSetRateLimitRequest(
            request=flow_pb2.SetRateLimitRequest(limit=limit)
        ),
        timeout=5,
    )
    # Windows are whole seconds of the clock (flowgate.lua): submit just after one opens, so
    # the first window takes its 4 starts (near its end, a loaded box let only 1 in: 5 windows).
    await asyncio.sleep((WINDOW_MS - time.time() * 1000 % WINDOW_MS) / 1000 + 0.02)
    coordinator = procs.children["coordinator"].pid
    cpu_before, wall_before = cpu_seconds(coordinator), time.monotonic()
    payload = json.dumps({"secs": 0.01}).encode()
    tasks = await asyncio.gather(
        *(driver.submit("sleep", payload, rate_limit_units={"openai": 1500}) for _ in range(14))
    )
    done = [await driver.wait_for(t.task_id, lambda t: t.state == SUCCEEDED) for t in tasks]
    cpu = cpu_seconds(coordinator) - cpu_before
    wall = time.monotonic() - wall_before
    assigned = sorted(t.assign_time.ToMilliseconds() for t in done)
    per_window = Counter(ms // WINDOW_MS for ms in assigned)
    # Never more starts in one window than the limit allows ...
    assert max(per_window.values()) <= LIMIT, per_window
    # ... and the waiting tasks start as soon as each window opens (not at the next safety pass).
    windows = sorted(per_window)
    for w in windows[1:]:
        first = min(ms for ms in assigned if ms // WINDOW_MS == w)
        assert first - w * WINDOW_MS < 250, (w, first)
    assert len(windows) == 4  # 14 tasks at 4 per window
    # The coordinator sleeps while tasks wait for their window: well under a tenth of a core.
    assert cpu / wall < 0.1, (cpu, wall)
    listed = await driver.stub.ListRateLimits(
        flow_pb2.CoordinatorServiceListRateLimitsRequest(request=flow_pb2.ListRateLimitsRequest()),
        timeout=5,
    )
    [usage] = listed.response.limits
    assert usage.limit.name == "openai" and usage.waiting_tasks == 0
