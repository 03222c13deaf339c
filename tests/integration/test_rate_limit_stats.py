"""Rate limits in WatchStats and on the dashboard's header, on a real in-process stack."""

from __future__ import annotations

import asyncio

from hivewire.client import Client
from hivewire.dashboard.model import DashboardModel
from hivewire.v1 import stats_pb2
from tests.integration.stack import Stack


async def test_watch_stats_shows_each_limit_and_its_waiting_tasks(stack: Stack) -> None:
    async with Client(stack.gateway_addr) as client:
        await client.set_rate_limit("openai", 2000, 3600)
        # No agent offers `nobody`: the tasks stay queued, and none has taken units yet.
        await client.submit("nobody", {}, rate_limit_units={"openai": 1500})
        watch = client.watch_stats(interval=0.2)
        stats: stats_pb2.Stats | None = None
        async with asyncio.timeout(30):
            async for stats in watch:
                if stats.rate_limits:
                    break
        assert stats is not None
        [usage] = stats.rate_limits
        assert (usage.limit.name, usage.limit.limit) == ("openai", 2000)
        assert usage.limit.window.ToMilliseconds() == 3_600_000
        assert (usage.used, usage.waiting_tasks) == (0, 0)
        model = DashboardModel()
        model.on_stats(stats)
        assert "openai 0/2000 per 3600s" in model.totals()
