"""The small chaos run (`make chaos` with 2,000 tasks): agents, the coordinator and Redis are
killed -9 under load, then the offline checker must find every task ended exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos.report import render, summary
from bench.chaos.run import ChaosConfig, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.timeout(400)]

TASKS = 2000


async def test_chaos_2000_tasks_none_lost_none_applied_twice(tmp_path: Path) -> None:
    cfg = ChaosConfig(
        tasks=TASKS,
        kill_every=(1.0, 2.5),
        submit_rate=150.0,  # spread the work over the faults
        work_ms=200,  # so a killed or paused agent is caught holding work
        drain_timeout=180.0,
        workdir=tmp_path / "chaos",
    )
    lines: list[str] = []
    result = await run_chaos(cfg, log=lines.append)
    report = render(result)
    print("\n".join(lines) + report)
    s = summary(result)
    assert result.verdict.ok, report
    assert s["tasks"] == TASKS
    assert s["succeeded"] == TASKS - TASKS // 100  # every 100th is poison
    assert s["dead_letters"] == s["failed"] == TASKS // 100
    assert s["agent_kills"] >= 1 and s["coordinator_kills"] >= 1, report
    assert s["redis_restarts"] == 1, report
    assert s["reclaims"] >= 1, report
    assert s["retries"] >= TASKS // 20, report  # every 20th task fails its first attempt
