"""Demo agent with echo, sleep, wordcount, fail and workflow helpers: `python -m hivewire.cli.demo`.

The workflow helpers (chunk, merge-counts, upper, collect) take a workflow step's input
(own fields plus "parents", or "item" in a map step; see services/coordinator/workflows/plan.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hivewire.agent import Agent, NonRetryableError, TaskContext, run_agent
from hivewire.core.credentials import CredentialError
from hivewire.core.logs import setup_logging
from hivewire.core.tls import TlsError

MAX_SLEEP_SECONDS = 300.0
DEFAULT_CAPABILITIES = ("echo", "wordcount", "sleep")
# What the shipped commands (commands/*.yaml) need besides echo and wordcount.
WORKFLOW_HELPERS = ("chunk", "merge-counts", "upper", "collect")
# The demo agents of `hivewire up --demo` and docker-compose.yml, by name: echo and wordcount
# tasks spread over both, sleep runs on demo-1 and fail on demo-2, and both run workflow steps.
DEMO_AGENTS: dict[str, tuple[str, ...]] = {
    "demo-1": ("echo", "wordcount", "sleep", *WORKFLOW_HELPERS),
    "demo-2": ("echo", "wordcount", "fail", *WORKFLOW_HELPERS),
}
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


def text_of(body: Any) -> str:
    """The text a demo handler works on: the payload itself, its "text", its map "item", or
    the "text" of a parent step's output."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for value in (body.get("text"), body.get("item")):
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("text"), str):
                return str(value["text"])
        parents = body.get("parents")
        if isinstance(parents, dict):
            for output in parents.values():
                if isinstance(output, dict) and isinstance(output.get("text"), str):
                    return str(output["text"])
    raise NonRetryableError('payload must be {"text": string}')


def wordcount(ctx: TaskContext) -> dict[str, Any]:
    """{"text": ...} -> {"words": total, "counts": {word: n}}, lowercased, split on non-letters."""
    text = text_of(ctx.json())
    # Handlers add their own spans under the task's trace through ctx.tracer / ctx.span.
    with ctx.tracer.start_as_current_span("count words") as span:
        counts = Counter(word.lower() for word in _WORD.findall(text))
        span.set_attribute("hivewire.cli.demo.words", sum(counts.values()))
    ctx.span.set_attribute("hivewire.cli.demo.distinct_words", len(counts))
    return {"words": sum(counts.values()), "counts": dict(counts)}


async def fail(ctx: TaskContext) -> None:
    """Always raises (retryable), to show retries and dead letters."""
    raise RuntimeError(f"demo failure on attempt {ctx.attempt}")


def chunk(ctx: TaskContext) -> list[str]:
    """{"text": ..., "chunks": n} -> the text as (at most) n strings of whole words."""
    body = ctx.json()
    words = text_of(body).split()
    n = body.get("chunks", 4) if isinstance(body, dict) else 4
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1000:
        raise NonRetryableError("chunks must be a whole number from 1 to 1000")
    size = max(1, -(-len(words) // n))
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def _counts_in(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [c for v in value for c in _counts_in(v)]
    if isinstance(value, dict) and isinstance(value.get("counts"), dict):
        return [value["counts"]]
    return []


def merge_counts(ctx: TaskContext) -> dict[str, Any]:
    """Sum the word counts found in the parents' outputs; {"top": n} picks the top words."""
    body = ctx.json()
    body = body if isinstance(body, dict) else {}
    parts = _counts_in(list((body.get("parents") or {}).values()))
    total: Counter[str] = Counter()
    for counts in parts:
        total.update({str(w): int(c) for w, c in counts.items()})
    top = body.get("top", 10)
    top = top if isinstance(top, int) and not isinstance(top, bool) and top > 0 else 10
    return {
        "words": sum(total.values()),
        "unique": len(total),
        "parts": len(parts),
        "top": [{"word": w, "count": c} for w, c in sorted(total.items(), key=_rank)[:top]],
        "counts": dict(total),
    }


def _rank(item: tuple[str, int]) -> tuple[int, str]:
    return (-item[1], item[0])


def upper(ctx: TaskContext) -> dict[str, str]:
    """{"text": ...} -> {"text": TEXT}."""
    return {"text": text_of(ctx.json()).upper()}


def collect(ctx: TaskContext) -> Any:
    """The parents' outputs by step id (a join step)."""
    body = ctx.json()
    return body.get("parents", {}) if isinstance(body, dict) else {}


HANDLERS = {
    "echo": echo,
    "sleep": sleep,
    "wordcount": wordcount,
    "fail": fail,
    "chunk": chunk,
    "merge-counts": merge_counts,
    "upper": upper,
    "collect": collect,
}


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


def demo_capabilities(name: str) -> tuple[str, ...]:
    """The capabilities of the demo agent called `name` (DEMO_AGENTS), else the defaults."""
    return DEMO_AGENTS.get(name, DEFAULT_CAPABILITIES)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hivewire.cli.demo", description=__doc__)
    parser.add_argument("--name", default="demo")
    parser.add_argument(
        "--capabilities",
        help="comma-separated; default: the DEMO_AGENTS entry of --name, else "
        + ",".join(DEFAULT_CAPABILITIES),
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, os.environ.get("HIVEWIRE_LOG_FORMAT") or "text")
    if args.capabilities is None:
        caps = list(demo_capabilities(args.name))
    else:
        caps = [c.strip() for c in args.capabilities.split(",") if c.strip()]
    try:
        agent = build_agent(args.name, caps, args.concurrency)
    except (TlsError, CredentialError) as exc:  # one clear line, not a traceback
        parser.exit(2, f"error: {exc}\n")
    run_agent(agent)


if __name__ == "__main__":
    main()
