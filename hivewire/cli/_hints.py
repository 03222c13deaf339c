"""While `--wait` waits: say on stderr when no live agent offers a capability work waits for."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, TypeVar

import grpc
import typer

from hivewire.client import Client
from hivewire.v1 import task_pb2, workflow_pb2

T = TypeVar("T")
Queued = Callable[[], Awaitable[set[str]]]
"""The capabilities of the work that is queued (waits for an agent) right now."""

HintAfterOpt = Annotated[
    float,
    typer.Option(
        envvar="HIVEWIRE_HINT_AFTER",
        min=0.0,
        help="With --wait: after this many seconds, say once on stderr for each capability the "
        "work is queued for that no live agent offers (0: never).",
    ),
]
DEFAULT_HINT_AFTER = 5.0


def no_agent_hint(capability: str, labels: Mapping[str, str]) -> str:
    wanted = f" with labels {','.join(f'{k}={v}' for k, v in sorted(labels.items()))}"
    return (
        f"hint: no live agent offers capability {capability!r}{wanted if labels else ''}; "
        "the task stays queued until one registers (hivewire agents)"
    )


def queued_task(client: Client, task_id: str) -> Queued:
    """The task's capability while it is PENDING (queued, or waiting out a retry backoff)."""

    async def queued() -> set[str]:
        task = await client.get(task_id)
        return {task.capability} if task.state == task_pb2.TASK_STATE_PENDING else set()

    return queued


def queued_steps(client: Client, workflow_id: str) -> Queued:
    """Capabilities of the workflow's released steps that no agent has taken yet."""

    async def queued() -> set[str]:
        wf = await client.get_workflow(workflow_id)
        running = workflow_pb2.STEP_STATE_RUNNING
        return {s.capability for s in wf.steps if s.state == running and not s.agent_id}

    return queued


async def tell_missing_agents(
    client: Client, queued: Queued, every: float, labels: Mapping[str, str]
) -> None:
    """Every `every` seconds until cancelled: each capability `queued()` names is looked up
    once (one ListAgents walk), and told on stderr if no ONLINE agent offers it. Only a hint:
    the work stays queued, nothing is cancelled or changed."""
    checked: set[str] = set()
    while True:
        await asyncio.sleep(every)
        try:
            for capability in sorted(await queued() - checked):
                if not await client.live_agents(capability, labels):
                    typer.echo(no_agent_hint(capability, labels), err=True)
                checked.add(capability)
        except grpc.aio.AioRpcError:
            continue  # the wait itself reports a gateway that is gone


async def wait_with_hints(
    client: Client,
    wait: Awaitable[T],
    queued: Queued,
    hint_after: float,
    labels: Mapping[str, str] | None = None,
) -> T:
    """`await wait`, with `tell_missing_agents` alongside (none if `hint_after` is 0)."""
    if hint_after <= 0:
        return await wait
    hints = asyncio.create_task(tell_missing_agents(client, queued, hint_after, labels or {}))
    try:
        return await wait
    finally:
        hints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hints
