"""Reading what schedules started, straight from Redis: the tick each run was created for."""

from __future__ import annotations

import itertools

from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.coordinator_helpers import all_task_ids


async def scheduled_ticks(redis: Redis, keys: Keys, name: str) -> list[int]:
    """The grid ticks (epoch ms) of every task schedule `name` started, in creation order
    (each fire's request_id is `schedule:<name>:<tick>`)."""
    ids = await all_task_ids(redis, keys)
    prefix = f"schedule:{name}:"
    ticks = []
    for task_id in ids:
        raw = await redis.hget(keys.task(task_id), "request_id")
        text = raw.decode() if raw else ""
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            ticks.append(int(text[len(prefix) :]))
    return ticks


def assert_consecutive(ticks: list[int], every_ms: int = 1000) -> None:
    """One run per tick, ticks one interval apart (none missed, none twice)."""
    assert ticks, "no tick fired"
    assert len(set(ticks)) == len(ticks), f"a tick fired twice: {ticks}"
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(g == every_ms for g in gaps), f"ticks not consecutive: gaps {gaps}"
