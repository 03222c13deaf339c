"""The benchmark's agent: one no-op capability (`noop`) that returns its payload."""

from __future__ import annotations

from hivewire.agent import Agent, TaskContext

agent = Agent("bench", max_concurrency=256)


@agent.handler("noop")
async def noop(ctx: TaskContext) -> bytes:
    return ctx.payload
