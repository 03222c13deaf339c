"""Demo agent with echo, sleep, wordcount and fail handlers: `python -m hivewire.demo`."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hivewire.agent import Agent, NonRetryableError, TaskContext, run_agent
from services.common.logs import setup_logging

MAX_SLEEP_SECONDS = 300.0
DEFAULT_CAPABILITIES = ("echo", "wordcount", "sleep")
_WORD = re.compile(r"[^\W\d_]+")


async def echo(ctx: TaskContext) -> bytes:
    """The payload, unchanged (the same JSON comes back)."""
    return ctx.payload


async def sleep(ctx: TaskContext) -> dict[str, float]:
    """{"seconds": s} -> sleeps s seconds (at most 300) -> {"slept": s}."""
    body = ctx.json()
    try:
        seconds = float(body.get("seconds", 1.0) if isinstance(body, dict) else body)
    except (TypeError, ValueError) as exc:
        raise NonRetryableError('payload must be {"seconds": number}') from exc
    seconds = max(0.0, min(seconds, MAX_SLEEP_SECONDS))
    await asyncio.sleep(seconds)
    return {"slept": seconds}


def wordcount(ctx: TaskContext) -> dict[str, Any]:
    """{"text": ...} -> {"words": total, "counts": {word: n}}, lowercased, split on non-letters."""
    body = ctx.json()
    text = body.get("text") if isinstance(body, dict) else body
    if not isinstance(text, str):
        raise NonRetryableError('payload must be {"text": string}')
    # Handlers add their own spans under the task's trace through ctx.tracer / ctx.span.
    with ctx.tracer.start_as_current_span("count words") as span:
        counts = Counter(word.lower() for word in _WORD.findall(text))
        span.set_attribute("hivewire.demo.words", sum(counts.values()))
    ctx.span.set_attribute("hivewire.demo.distinct_words", len(counts))
    return {"words": sum(counts.values()), "counts": dict(counts)}


async def fail(ctx: TaskContext) -> None:
    """Always raises (retryable), to show retries and dead letters."""
    raise RuntimeError(f"demo failure on attempt {ctx.attempt}")


HANDLERS = {"echo": echo, "sleep": sleep, "wordcount": wordcount, "fail": fail}


def build_agent(
    name: str = "demo",
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES,
    concurrency: int = 8,
    **kwargs: Any,
) -> Agent:
    """A demo Agent with the named handlers."""
    agent = Agent(name, max_concurrency=concurrency, **kwargs)
    for capability in capabilities:
        if capability not in HANDLERS:
            raise ValueError(f"unknown demo capability {capability!r}; have {sorted(HANDLERS)}")
        agent.add_handler(capability, HANDLERS[capability])
    return agent


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hivewire.demo", description=__doc__)
    parser.add_argument("--name", default="demo")
    parser.add_argument("--capabilities", default=",".join(DEFAULT_CAPABILITIES))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, os.environ.get("HIVEWIRE_LOG_FORMAT") or "text")
    caps = [c.strip() for c in args.capabilities.split(",") if c.strip()]
    run_agent(build_agent(args.name, caps, args.concurrency))


if __name__ == "__main__":
    main()
