"""The chaos run's agent process: `python -m bench.chaos.agent --name NAME`.

One capability, `chaos`. Each execution first counts itself in Redis (hash field
`<task_id>:<attempt>`, written without client retries so a count is never inflated by a resent
command), works a few random milliseconds so kills land mid-task, then:
`ok` returns {"n", "attempt"}; `flaky` fails its first attempt; `poison` always fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

from hivewire.agent import Agent, TaskContext, run_agent
from hivewire_services.common.config import CommonSettings, load_settings
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import create_redis

CAPABILITY = "chaos"


def build(name: str, concurrency: int) -> Agent:
    settings = load_settings(CommonSettings)
    keys = Keys(settings.namespace)
    record = create_redis(settings.redis_url, retries=0, max_connections=concurrency + 2)
    agent = Agent(name, max_concurrency=concurrency, redis_url=settings.redis_url)

    @agent.handler(CAPABILITY)
    async def chaos(ctx: TaskContext) -> dict[str, Any]:
        job = ctx.json()
        await record.hincrby(keys.chaos_executions, f"{ctx.task_id}:{ctx.attempt}", 1)
        await asyncio.sleep(random.uniform(0, job.get("work_ms", 0)) / 1000)
        if job["kind"] == "poison" or (job["kind"] == "flaky" and ctx.attempt == 1):
            raise RuntimeError(f"{job['kind']} task #{job['n']} fails attempt {ctx.attempt}")
        return {"n": job["n"], "attempt": ctx.attempt}

    return agent


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos.agent", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_agent(build(args.name, args.concurrency))


if __name__ == "__main__":
    main()
