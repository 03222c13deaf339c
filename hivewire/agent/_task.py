"""How one attempt runs: the handler under its span and hooks, its return value as a result."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
from dataclasses import replace

from google.protobuf.timestamp_pb2 import Timestamp

from hivewire.agent._context import Handler, NonRetryableError, TaskContext
from hivewire.agent._hooks import TaskHooks
from hivewire.agent._reports import AttemptReporter, Report, attempt_result
from hivewire.agent._spawn import Children, Spawner
from hivewire.core import tracing
from hivewire.core.clock import timestamp_now
from hivewire.v1 import stream_pb2

__all__ = ["Handler", "NonRetryableError", "TaskContext", "run_attempt"]


def encode_result(value: object) -> bytes:
    """bytes as they are, str as UTF-8, anything else as JSON."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


def make_result(
    envelope: stream_pb2.TaskEnvelope,
    outcome: stream_pb2.TaskOutcome.ValueType,
    start: Timestamp,
    *,
    result: bytes = b"",
    error: str = "",
) -> stream_pb2.TaskResult:
    """The attempt's final result, ended now."""
    return attempt_result(
        envelope, outcome, start, result=result, error=error, end_time=timestamp_now()
    )


async def _call(handler: Handler, ctx: TaskContext) -> object:
    """Run the handler inside its own span, a child of the delivery's processing span."""
    if not tracing.recording():
        return await _invoke(handler, ctx)
    with tracing.tracer().start_as_current_span(
        f"handle {ctx.capability}", attributes={tracing.TASK_ID: ctx.task_id}
    ) as span:
        return await _invoke(handler, replace(ctx, span=span))


@functools.lru_cache(maxsize=1024)
def _is_async_cached(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler)


def _is_async(handler: Handler) -> bool:
    """Whether `handler` is a coroutine function (asked once per handler, not per attempt;
    a handler that cannot be a cache key, a callable object without a hash, is asked each
    time)."""
    try:
        return _is_async_cached(handler)
    except TypeError:
        return inspect.iscoroutinefunction(handler)


async def _invoke(handler: Handler, ctx: TaskContext) -> object:
    if _is_async(handler):
        return await handler(ctx)
    value = await asyncio.to_thread(handler, ctx)
    if inspect.isawaitable(value):
        return await value
    return value


async def _run_handler(handler: Handler, ctx: TaskContext, hooks: TaskHooks | None) -> object:
    if hooks:
        await hooks.run_before(ctx)
    return await _call(handler, ctx)


async def _on_error(
    hooks: TaskHooks | None, ctx: TaskContext, exc: BaseException, result: stream_pb2.TaskResult
) -> stream_pb2.TaskResult:
    if hooks:
        await hooks.run_on_error(ctx, exc)
    return result


async def run_attempt(
    envelope: stream_pb2.TaskEnvelope,
    handler: Handler | None,
    report: Report,
    report_after: float,
    hooks: TaskHooks | None = None,
    spawner: Spawner | None = None,
) -> stream_pb2.TaskResult:
    """Run one attempt and return its final TaskResult; never raises except on cancellation.

    `report` sends the attempt's STARTED and PROGRESS reports (the transport's; it logs its own
    errors). If the handler is still running after `report_after` seconds and has reported
    nothing yet, STARTED is reported (short tasks skip that write). The handler's progress and
    output are sent before this returns, so they come before the result. `hooks` run around
    the handler (hivewire.agent._hooks). `spawner` lets the handler spawn child tasks
    (ctx.spawn); those still running when the attempt ends are cancelled.
    """
    start = timestamp_now()
    if handler is None:
        return make_result(
            envelope,
            stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY,
            start,
            error=f"UnknownCapability: no handler for {envelope.capability!r}",
        )
    reporter = AttemptReporter(envelope, start, report)
    children = Children(spawner, envelope.task_id, envelope.attempt_token) if spawner else None
    try:
        result = await _attempt(envelope, handler, reporter, report, report_after, hooks, children)
    except BaseException:
        reporter.abort()
        raise
    finally:
        if children is not None:
            await children.cancel_open()
    await reporter.close()
    return result


async def _attempt(
    envelope: stream_pb2.TaskEnvelope,
    handler: Handler,
    reporter: AttemptReporter,
    report: Report,
    report_after: float,
    hooks: TaskHooks | None,
    children: Children | None = None,
) -> stream_pb2.TaskResult:
    start = reporter.start_time
    ctx = TaskContext(
        task_id=envelope.task_id,
        attempt=envelope.attempt,
        capability=envelope.capability,
        payload=envelope.payload,
        agent_id=envelope.agent_id,
        workflow_id=envelope.workflow_id,
        reporter=reporter,
        children=children,
    )
    timeout = (
        envelope.attempt_timeout.ToTimedelta().total_seconds()
        if envelope.HasField("attempt_timeout")
        else None
    )
    # The handler runs in this task; a timer reports STARTED if it is still running after
    # report_after (and sent no progress report, which starts it too), and that report is
    # written before the final result.
    started: asyncio.Task[None] | None = None

    def report_started() -> None:
        nonlocal started
        if not reporter.reports_sent:
            started = asyncio.ensure_future(report(reporter.started))

    timer = asyncio.get_running_loop().call_later(report_after, report_started)
    returned = False
    try:
        # No deadline, no Timeout object: most attempts have none.
        async with asyncio.timeout(timeout) if timeout else contextlib.nullcontext():
            try:
                value = await _run_handler(handler, ctx, hooks)
                returned = True
            except asyncio.CancelledError:
                timer.cancel()
                if started is not None:
                    started.cancel()
                raise
            except Exception:
                timer.cancel()
                if started is not None:
                    await started
                raise
            timer.cancel()
            if started is not None:
                await started
        payload = encode_result(value)
    except NonRetryableError as exc:
        failed = _failed(envelope, start, stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY, exc)
        return await _on_error(hooks, ctx, exc, failed)
    except TimeoutError as exc:
        failed = _failed(envelope, start, stream_pb2.TASK_OUTCOME_FAILED, exc)
        return await _on_error(hooks, ctx, exc, failed)
    except (TypeError, ValueError) as exc:
        # A return value that cannot be encoded fails the same way on every attempt.
        outcome = (
            stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
            if returned
            else stream_pb2.TASK_OUTCOME_FAILED
        )
        return await _on_error(hooks, ctx, exc, _failed(envelope, start, outcome, exc))
    except Exception as exc:
        failed = _failed(envelope, start, stream_pb2.TASK_OUTCOME_FAILED, exc)
        return await _on_error(hooks, ctx, exc, failed)
    if hooks:
        await hooks.run_after(ctx, value)
    return make_result(envelope, stream_pb2.TASK_OUTCOME_SUCCEEDED, start, result=payload)


def _failed(
    envelope: stream_pb2.TaskEnvelope,
    start: Timestamp,
    outcome: stream_pb2.TaskOutcome.ValueType,
    exc: BaseException,
) -> stream_pb2.TaskResult:
    text = error_text(exc)
    if isinstance(exc, TimeoutError) and not str(exc):
        text = "TimeoutError: attempt timed out"
    return make_result(envelope, outcome, start, error=text)


MAX_ERROR_CHARS = 4096


def error_text(exc: BaseException) -> str:
    """`<Type>: <message>` of an exception, bounded in length."""
    message = str(exc)
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."
