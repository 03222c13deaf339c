"""The small chaos run (`make chaos` with 2,000 tasks): agents, the coordinator and Redis are
killed -9 under load, then the offline checker must find every task ended exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos.check import check_workdir
from bench.chaos.record import read_ledger
from bench.chaos.report import render, summary
from bench.chaos.run import ChaosConfig, run_chaos
from bench.chaos.stack import NAMESPACE
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.v1 import event_pb2
from hivewire_services.common.events import decode_entry
from hivewire_services.common.keys import Keys, task_state_indexes
from hivewire_services.common.redis import create_redis

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
        keep=True,
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

    # The same record, re-read offline from the kept AOF, passes again; tampered, it fails.
    assert (await check_workdir(cfg.workdir)).ok
    await tamper(cfg.workdir)
    rules = {v.rule for v in (await check_workdir(cfg.workdir)).violations}
    assert rules == {"LOST", "APPLIED_TWICE"}, rules


async def tamper(workdir: Path) -> None:
    """Delete one accepted task and append a copy of another's SUCCEEDED event."""
    keys = Keys(NAMESPACE)
    accepted = read_ledger(workdir / "accepted.jsonl")
    redis = EmbeddedRedis(0, workdir / "redis", appendonly=True, appendfsync="always")
    redis.start(timeout=60)
    client = create_redis(redis.url)
    try:
        await client.delete(keys.task(accepted[0].task_id))
        for index in task_state_indexes(keys):
            await client.zrem(index, accepted[0].task_id)
        for entry_id, fields in await client.xrange(keys.events):
            event = decode_entry(entry_id, fields)
            if event.task_id == accepted[1].task_id and (
                event.type == event_pb2.EVENT_TYPE_TASK_SUCCEEDED
            ):
                await client.xadd(keys.events, fields)
                break
    finally:
        await client.aclose()
        redis.stop()
