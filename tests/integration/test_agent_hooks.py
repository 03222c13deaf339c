"""Agent-side hooks on a real agent, fed by the real registry and coordinator (and, over the
grpc transport, the gateway)."""

from __future__ import annotations

from typing import Any

from hivewire.agent import TaskContext
from hivewire.v1 import task_pb2
from tests.integration.stack import running_stack
from tests.settings import StackSettings
from tests.waiting import eventually


async def test_agent_hooks_run_around_real_tasks(settings: StackSettings, transport: str) -> None:
    async with running_stack(settings, gateway=transport == "grpc") as stack:
        agent = stack.new_agent("hooked", max_concurrency=2, transport=transport)
        calls: list[tuple[str, str, int, Any]] = []

        @agent.before_task
        async def before(ctx: TaskContext) -> None:
            calls.append(("before", ctx.capability, ctx.attempt, None))

        @agent.after_task
        async def after(ctx: TaskContext, value: Any) -> None:
            calls.append(("after", ctx.capability, ctx.attempt, value))

        @agent.on_error
        def error(ctx: TaskContext, exc: BaseException) -> None:
            calls.append(("error", ctx.capability, ctx.attempt, str(exc)))

        @agent.handler("echo")
        async def echo(ctx: TaskContext) -> Any:
            return ctx.json()

        @agent.handler("flaky")
        async def flaky(ctx: TaskContext) -> Any:
            raise RuntimeError(f"attempt {ctx.attempt} broke")

        async with agent:
            [ok] = await stack.submit("echo", payload=b'{"x": 1}')
            [bad] = await stack.submit("flaky", max_attempts=2)

            async def finished() -> bool:
                states = await stack.states([ok.task_id, bad.task_id])
                return states == [task_pb2.TASK_STATE_SUCCEEDED, task_pb2.TASK_STATE_FAILED]

            await eventually(finished)
    echo_calls = [c for c in calls if c[1] == "echo"]
    flaky_calls = [c for c in calls if c[1] == "flaky"]
    assert echo_calls == [("before", "echo", 1, None), ("after", "echo", 1, {"x": 1})]
    assert flaky_calls == [
        ("before", "flaky", 1, None),
        ("error", "flaky", 1, "attempt 1 broke"),
        ("before", "flaky", 2, None),
        ("error", "flaky", 2, "attempt 2 broke"),
    ]
