"""An agent's stop: at once when idle (its inbox read blocks long), all of it inside the drain
grace, and nothing delivered to it left behind."""

from __future__ import annotations

import asyncio
import time

from hivewire.agent import Agent, TaskContext
from hivewire.core.wire import INBOX_GROUP
from hivewire.v1 import agent_pb2, stream_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.test_agent_sdk_delivery import deliver, registry_port, results
from tests.settings import StackSettings
from tests.waiting import eventually

__all__ = ["registry_port"]  # a fixture this module uses


def agent_for(registry_port: int, settings: StackSettings, **kw: object) -> Agent:
    return Agent(
        "stopper",
        registry_addr=f"127.0.0.1:{registry_port}",
        redis_url=settings.redis_url,
        **kw,  # type: ignore[arg-type]
    )


async def blocked_in_inbox_read(redis: Redis) -> bool:
    return any(c.get("cmd") == "xreadgroup" for c in await redis.client_list())


async def test_an_idle_agent_stops_at_once(
    registry_port: int, settings: StackSettings, redis: Redis
) -> None:
    agent = agent_for(registry_port, settings, drain_grace=20.0)
    agent.add_handler("echo", lambda ctx: ctx.payload)
    await agent.start()
    await eventually(lambda: blocked_in_inbox_read(redis), message="the long inbox read")
    started = time.monotonic()
    await agent.stop()
    assert time.monotonic() - started < 2.0  # not the 30 s read, not the 20 s grace


async def test_the_whole_stop_fits_in_the_drain_grace(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    agent = agent_for(registry_port, settings, drain_grace=2.5)
    running = asyncio.Event()

    async def sleep(ctx: TaskContext) -> None:
        running.set()
        await asyncio.sleep(60)  # far past the grace

    agent.add_handler("sleep", sleep)
    await agent.start()
    agent_id = agent.agent_id
    await deliver(redis, keys, agent_id, 60, owned=True)
    await asyncio.wait_for(running.wait(), 10)
    started = time.monotonic()
    await agent.stop()
    took = time.monotonic() - started
    assert 1.5 <= took < 3.5  # the grace, a fifth of it kept for deregistering
    offline = str(agent_pb2.AGENT_STATE_OFFLINE).encode()
    assert await redis.hget(keys.agent(agent_id), "state") == offline  # it deregistered


async def test_deliveries_the_stopping_agent_took_or_never_read_are_run(
    registry_port: int, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    agent = agent_for(registry_port, settings, max_concurrency=1, drain_grace=10.0)
    release = asyncio.Event()
    ran: list[str] = []

    async def sleep(ctx: TaskContext) -> None:
        ran.append(ctx.task_id)
        if len(ran) == 1:
            await release.wait()  # holds the only slot: the reader waits for it, not reading

    agent.add_handler("sleep", sleep)
    await agent.start()
    first = await deliver(redis, keys, agent.agent_id, 0, owned=True)
    await eventually(lambda: ran == [first])
    taken = await deliver(redis, keys, agent.agent_id, 0, owned=True)
    # As a read cancelled by the stop may leave it: delivered to the agent, never started.
    inbox = keys.inbox(agent.agent_id)
    assert await redis.xreadgroup(INBOX_GROUP, agent.agent_id, {inbox: ">"}, count=1)
    unread = await deliver(redis, keys, agent.agent_id, 0, owned=True)
    stopping = asyncio.create_task(agent.stop())
    # The stop collects what is left and starts it while the first task still runs.
    await eventually(lambda: len(ran) == 3, message="the left-over deliveries started")
    release.set()
    await asyncio.wait_for(stopping, 15)
    assert sorted(ran[1:]) == sorted([taken, unread])
    done = {r.task_id for r in await results(redis, keys) if r.outcome != STARTED}
    assert {first, taken, unread} <= done
    assert await redis.xlen(inbox) == 0  # every entry acknowledged and deleted


STARTED = stream_pb2.TASK_OUTCOME_STARTED
