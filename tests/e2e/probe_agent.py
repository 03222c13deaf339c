"""An agent with one capability no demo agent has, for tests that need to know who ran what."""

from __future__ import annotations

from hivewire.agent import Agent, TaskContext

agent = Agent("probe", max_concurrency=4)


@agent.handler("probe")
async def probe(ctx: TaskContext) -> bytes:
    return ctx.payload
