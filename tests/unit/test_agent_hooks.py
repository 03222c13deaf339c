"""Agent-side hooks: before-task, after-task and on-error callbacks around one attempt."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration

from hivewire.agent import Agent, NonRetryableError, TaskContext
from hivewire.agent._task import run_attempt
from hivewire.v1 import stream_pb2


def envelope(timeout: float | None = None) -> stream_pb2.TaskEnvelope:
    env = stream_pb2.TaskEnvelope(
        task_id="a" * 32,
        attempt=1,
        attempt_token="t" * 32,
        capability="cap",
        payload=b'{"n": 2}',
        agent_id="b" * 32,
    )
    if timeout is not None:
        env.attempt_timeout.CopyFrom(Duration(nanos=int(timeout * 1e9)))
    return env


class Recorder:
    """An agent with every kind of hook, each appending what it saw to `calls`."""

    def __init__(self) -> None:
        self.agent = Agent("hooked")
        self.calls: list[tuple[str, Any]] = []

        @self.agent.before_task
        async def before(ctx: TaskContext) -> None:
            self.calls.append(("before", ctx.json()))

        @self.agent.after_task
        def after(ctx: TaskContext, value: Any) -> None:  # a plain function works too
            self.calls.append(("after", value))

        @self.agent.on_error
        async def error(ctx: TaskContext, exc: BaseException) -> None:
            self.calls.append(("error", type(exc).__name__))

    async def run(self, handler: Any, env: stream_pb2.TaskEnvelope | None = None) -> Any:
        async def report(result: stream_pb2.TaskResult) -> None:
            pass

        return await run_attempt(env or envelope(), handler, report, 10, self.agent.task_hooks)


async def test_before_and_after_wrap_a_successful_attempt() -> None:
    rec = Recorder()

    async def handler(ctx: TaskContext) -> Any:
        rec.calls.append(("handler", ctx.attempt))
        return {"double": ctx.json()["n"] * 2}

    result = await rec.run(handler)
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    assert rec.calls == [("before", {"n": 2}), ("handler", 1), ("after", {"double": 4})]


async def test_on_error_sees_the_exception_and_the_outcome_is_unchanged() -> None:
    rec = Recorder()

    async def retryable(ctx: TaskContext) -> Any:
        raise KeyError("missing")

    async def permanent(ctx: TaskContext) -> Any:
        raise NonRetryableError("bad input")

    result = await rec.run(retryable)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED
    assert "KeyError" in result.error
    result = await rec.run(permanent)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
    assert rec.calls == [
        ("before", {"n": 2}),
        ("error", "KeyError"),
        ("before", {"n": 2}),
        ("error", "NonRetryableError"),
    ]


async def test_on_error_runs_for_a_timed_out_attempt() -> None:
    rec = Recorder()

    async def slow(ctx: TaskContext) -> Any:
        await asyncio.sleep(30)  # outlives the attempt timeout under test

    result = await rec.run(slow, envelope(timeout=0.05))
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED
    assert rec.calls == [("before", {"n": 2}), ("error", "TimeoutError")]


async def test_a_raising_before_task_fails_the_attempt_without_running_the_handler() -> None:
    agent = Agent("gated")
    ran: list[str] = []
    errors: list[BaseException] = []

    @agent.before_task
    def gate(ctx: TaskContext) -> None:
        raise NonRetryableError("quota exceeded")

    @agent.on_error
    def record(ctx: TaskContext, exc: BaseException) -> None:
        errors.append(exc)

    async def handler(ctx: TaskContext) -> Any:
        ran.append(ctx.task_id)

    async def report(result: stream_pb2.TaskResult) -> None:
        pass

    result = await run_attempt(envelope(), handler, report, 10, agent.task_hooks)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
    assert "quota exceeded" in result.error
    assert ran == [] and [str(e) for e in errors] == ["quota exceeded"]


async def test_failing_after_and_error_callbacks_are_logged_not_fatal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = Agent("clumsy")

    @agent.after_task
    async def after(ctx: TaskContext, value: Any) -> None:
        raise RuntimeError("metrics down")

    @agent.on_error
    def error(ctx: TaskContext, exc: BaseException) -> None:
        raise RuntimeError("pager down")

    async def report(result: stream_pb2.TaskResult) -> None:
        pass

    async def ok(ctx: TaskContext) -> str:
        return "done"

    async def boom(ctx: TaskContext) -> str:
        raise ValueError("nope")

    with caplog.at_level(logging.ERROR, logger="hivewire.agent._hooks"):
        good = await run_attempt(envelope(), ok, report, 10, agent.task_hooks)
        bad = await run_attempt(envelope(), boom, report, 10, agent.task_hooks)
    assert good.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED and good.result == b"done"
    assert bad.outcome == stream_pb2.TASK_OUTCOME_FAILED and "nope" in bad.error
    text = caplog.text
    assert "after_task callback" in text and "metrics down" in text
    assert "on_error callback" in text and "pager down" in text


def test_no_hooks_means_nothing_to_run() -> None:
    agent = Agent("plain")
    assert not agent.task_hooks
    agent.before_task(lambda ctx: None)
    assert agent.task_hooks
    assert Agent("other").task_hooks is not agent.task_hooks
