"""A test agent process for the delivery fault tests: `python -m tests.e2e.delivery_agent NAME`.

Handlers: `sleep` sleeps payload["secs"] then returns {"agent": NAME, "attempt": n};
`echo` sleeps the same, then returns {"echo": payload, "agent": NAME}; `poison` always raises;
`parent` spawns a `sleep` child with its payload (through HIVEWIRE_GATEWAY_ADDR) and returns
the child's result.
Configured through HIVEWIRE_* like any agent (HIVEWIRE_AGENT_TRANSPORT=grpc: over a gateway).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from hivewire.agent import Agent, TaskContext, run_agent


def build(name: str, max_concurrency: int) -> Agent:
    agent = Agent(name, max_concurrency=max_concurrency, running_report_after=0.05)

    @agent.handler("sleep")
    async def sleep(ctx: TaskContext) -> dict[str, Any]:
        await asyncio.sleep(float(ctx.json()["secs"]))  # the work: as long as the test asks
        return {"agent": name, "attempt": ctx.attempt}

    @agent.handler("echo")
    async def echo(ctx: TaskContext) -> dict[str, Any]:
        payload = ctx.json()
        await asyncio.sleep(float(payload["secs"]))  # the work: as long as the test asks
        return {"echo": payload, "agent": name}

    @agent.handler("poison")
    async def poison(ctx: TaskContext) -> None:
        raise RuntimeError("poison pill")

    @agent.handler("parent")
    async def parent(ctx: TaskContext) -> Any:
        return await ctx.spawn("sleep", ctx.json())

    return agent


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    run_agent(build(sys.argv[1], concurrency))
