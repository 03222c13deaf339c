"""Progress and output of one attempt: coalesced reports, in order, bounded, before the result."""

from __future__ import annotations

import asyncio
import logging

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from hivewire.agent import TaskContext
from hivewire.agent._reports import MAX_CHUNK_CHARS, AttemptReporter, split_lines
from hivewire.agent._task import run_attempt
from hivewire.v1 import stream_pb2
from tests.unit.test_agent_task import envelope

PROGRESS = stream_pb2.TASK_OUTCOME_PROGRESS
STDOUT, STDERR, LOG = (
    stream_pb2.OUTPUT_STREAM_STDOUT,
    stream_pb2.OUTPUT_STREAM_STDERR,
    stream_pb2.OUTPUT_STREAM_LOG,
)


class Sent:
    """The transport's report callable: keeps what it was given, optionally held back."""

    def __init__(self) -> None:
        self.results: list[stream_pb2.TaskResult] = []
        self.open = asyncio.Event()
        self.open.set()

    async def __call__(self, result: stream_pb2.TaskResult) -> None:
        await self.open.wait()
        self.results.append(result)

    def reports(self) -> list[stream_pb2.TaskResult]:
        return [r for r in self.results if r.outcome == PROGRESS]

    def lines(self) -> list[tuple[int, str]]:
        return [(c.stream, c.text) for r in self.reports() for c in r.output]


def test_split_lines() -> None:
    assert split_lines("a\nb\n") == ["a", "b"]
    assert split_lines("") == []
    assert split_lines("\n") == [""]
    assert split_lines("x" * (MAX_CHUNK_CHARS + 1)) == ["x" * MAX_CHUNK_CHARS, "x"]


async def test_output_and_progress_are_coalesced_in_order_before_the_result() -> None:
    sent = Sent()

    async def handler(ctx: TaskContext) -> str:
        for i in range(200):
            await ctx.output(f"line {i}\nmore {i}", "stderr" if i % 2 else "stdout")
            if i % 50 == 0:
                await ctx.progress(i / 200, f"at {i}")
                await asyncio.sleep(0.06)  # lets a report go out mid-way: several reports
        await ctx.progress(message="done")
        return "ok"

    result = await run_attempt(envelope(), handler, sent, report_after=10)
    # Everything was sent before run_attempt returned, so before the result is written.
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    expected = []
    for i in range(200):
        kind = STDERR if i % 2 else STDOUT
        expected += [(kind, f"line {i}"), (kind, f"more {i}")]
    assert sent.lines() == expected
    reports = sent.reports()
    assert 2 <= len(reports) <= 12  # coalesced: far fewer reports than the 400 lines
    for r in reports:
        assert (r.task_id, r.attempt, r.attempt_token) == ("a" * 32, 2, "t" * 32)
        assert r.HasField("start_time") and not r.HasField("end_time")
    with_progress = [r.progress for r in reports if r.HasField("progress")]
    assert with_progress[-1].message == "done"
    assert with_progress[-1].fraction == pytest.approx(150 / 200)  # kept: not given again
    assert [s for s in sent.results if s.outcome == stream_pb2.TASK_OUTCOME_STARTED] == []


async def test_a_short_quiet_handler_sends_nothing() -> None:
    sent = Sent()

    async def handler(ctx: TaskContext) -> str:
        return "ok"

    await run_attempt(envelope(), handler, sent, report_after=10)
    assert sent.results == []


async def test_a_slow_transport_holds_the_handler_back() -> None:
    sent = Sent()
    sent.open.clear()  # the first report never completes until opened
    reporter = AttemptReporter(envelope(), Timestamp(), sent, max_buffered=1000)
    written = 0

    async def write() -> None:
        nonlocal written
        for i in range(10):
            await reporter.output(f"{i}" + "x" * 400)
            written += 1

    writer = asyncio.ensure_future(write())
    await asyncio.sleep(0.3)  # far longer than the flush interval: the writer is held back
    assert not writer.done()
    assert written == 6  # three lines in the report in flight, three fill the 1,000-byte buffer
    sent.open.set()
    await asyncio.wait_for(writer, 5)
    await asyncio.wait_for(reporter.close(), 5)
    assert [t[0] for _, t in sent.lines()] == [str(i) for i in range(10)]


async def test_logger_records_become_log_lines_from_async_and_sync_handlers() -> None:
    sent = Sent()

    async def handler(ctx: TaskContext) -> str:
        ctx.logger.info("hello %s", "async")
        ctx.logger.debug("not shown")
        await asyncio.to_thread(ctx.logger.warning, "from a thread")
        return "ok"

    await run_attempt(envelope(), handler, sent, report_after=10)
    assert sent.lines() == [(LOG, "INFO hello async"), (LOG, "WARNING from a thread")]

    def sync_handler(ctx: TaskContext) -> str:
        ctx.logger.error("sync\nsecond line")
        return "ok"

    sent = Sent()
    await run_attempt(envelope(), sync_handler, sent, report_after=10)
    assert sent.lines() == [(LOG, "ERROR sync"), (LOG, "second line")]
    assert isinstance(TaskContext("a", 1, "c", b"", "b").logger, logging.Logger)


async def test_a_progress_report_stands_for_started() -> None:
    sent = Sent()

    async def handler(ctx: TaskContext) -> str:
        await ctx.progress(0.1)
        await asyncio.sleep(0.3)  # outlives report_after: STARTED would be due by now
        return "ok"

    await run_attempt(envelope(), handler, sent, report_after=0.15)
    assert [r.outcome for r in sent.results] == [PROGRESS]


async def test_bad_arguments_are_refused() -> None:
    reporter = AttemptReporter(envelope(), Timestamp(), Sent())
    with pytest.raises(ValueError, match="fraction"):
        await reporter.progress(1.5, None)
    with pytest.raises(ValueError, match="stream"):
        await reporter.output("x", "stdin")


async def test_a_cancelled_attempt_stops_reporting() -> None:
    sent = Sent()
    sent.open.clear()
    entered = asyncio.Event()

    async def handler(ctx: TaskContext) -> str:
        await ctx.output("before")
        entered.set()
        await asyncio.sleep(30)  # cancelled below
        return "never"

    attempt = asyncio.ensure_future(run_attempt(envelope(), handler, sent, report_after=10))
    await entered.wait()
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert sent.results == []
