"""Progress and output of one attempt, coalesced into PROGRESS reports.

What a handler reports (ctx.progress, ctx.output, ctx.logger) is buffered and sent as one
PROGRESS TaskResult at most every FLUSH_INTERVAL seconds, sooner once FLUSH_BYTES of output
wait; `close()` sends the rest before the attempt's result is written, so an attempt's output
always comes before its result. The buffer is bounded: `output()` waits while MAX_BUFFERED_BYTES
are unsent (back-pressure on a handler that writes faster than reports go out), and log records,
which cannot wait, are dropped and counted instead.

Reports go through `report`, the transport's way to send a TaskResult (the Redis transport
appends it to the results stream; a gRPC transport sends it on its connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from hivewire.core.clock import timestamp_now
from hivewire.v1 import stream_pb2

__all__ = ["AttemptReporter", "Report", "attempt_result"]

logger = logging.getLogger(__name__)

Report = Callable[[stream_pb2.TaskResult], Awaitable[None]]
"""Sends one TaskResult for an attempt (STARTED, PROGRESS); logs its own transport errors."""

FLUSH_INTERVAL = 0.05
FLUSH_BYTES = 64 * 1024
MAX_BUFFERED_BYTES = 1024 * 1024
MAX_REPORT_BYTES = 256 * 1024
MAX_CHUNK_CHARS = 16 * 1024
"""Longer lines are split into chunks of this many characters."""
MAX_MESSAGE_CHARS = 1024
TASK_LOGGER = "hivewire.task"
"""Parent of every attempt's logger: records reach the agent's own log through it too."""

STREAMS = {
    "stdout": stream_pb2.OUTPUT_STREAM_STDOUT,
    "stderr": stream_pb2.OUTPUT_STREAM_STDERR,
    "log": stream_pb2.OUTPUT_STREAM_LOG,
}


def attempt_result(
    envelope: stream_pb2.TaskEnvelope,
    outcome: stream_pb2.TaskOutcome.ValueType,
    start: Timestamp,
    **fields: Any,
) -> stream_pb2.TaskResult:
    """A report on the envelope's attempt (its ids): `outcome`, `start` and any other `fields`."""
    return stream_pb2.TaskResult(
        task_id=envelope.task_id,
        attempt=envelope.attempt,
        attempt_token=envelope.attempt_token,
        agent_id=envelope.agent_id,
        outcome=outcome,
        start_time=start,
        **fields,
    )


def split_lines(text: str) -> list[str]:
    """One chunk per line (without its line break), long lines split; '' gives no chunk."""
    out: list[str] = []
    for line in text.splitlines():
        out += [line[i : i + MAX_CHUNK_CHARS] for i in range(0, len(line), MAX_CHUNK_CHARS)] or [""]
    return out


class AttemptReporter:
    """The progress and output of one attempt: buffered, coalesced, flushed by `close()`."""

    def __init__(
        self,
        envelope: stream_pb2.TaskEnvelope,
        start: Timestamp,
        report: Report,
        *,
        interval: float = FLUSH_INTERVAL,
        max_buffered: int = MAX_BUFFERED_BYTES,
    ) -> None:
        """`start` is when the attempt started: each report carries it and the attempt's ids."""
        self._envelope = envelope
        self._start = start
        self._started: stream_pb2.TaskResult | None = None
        self._report = report
        self._interval = interval
        self._max_buffered = max_buffered
        self._chunks: list[stream_pb2.OutputChunk] = []
        self._bytes = 0
        self._progress: stream_pb2.TaskProgress | None = None
        self._last = stream_pb2.TaskProgress()
        self._dropped_records = 0
        self._closing = False
        self._sender: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()  # log records may come from other threads
        self._pending = asyncio.Event()  # something to send, or closing
        self._urgent = asyncio.Event()  # send without waiting for the interval
        self._space = asyncio.Event()  # the buffer is below its bound
        self._logger: logging.Logger | None = None
        self.reports_sent = 0

    @property
    def start_time(self) -> Timestamp:
        """When the attempt started."""
        return self._start

    @property
    def started(self) -> stream_pb2.TaskResult:
        """The attempt's STARTED report (built when first needed: most attempts never send it)."""
        if self._started is None:
            self._started = attempt_result(
                self._envelope, stream_pb2.TASK_OUTCOME_STARTED, self._start
            )
        return self._started

    # What the handler calls
    async def progress(self, fraction: float | None, message: str | None) -> None:
        """Set the attempt's progress; an argument left None keeps its last value."""
        if fraction is not None:
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"fraction must be between 0 and 1, not {fraction!r}")
            self._last.fraction = fraction
        if message is not None:
            self._last.message = message[:MAX_MESSAGE_CHARS]
        self._progress = stream_pb2.TaskProgress()
        self._progress.CopyFrom(self._last)
        self._signal()

    async def output(self, text: str, stream: str = "stdout") -> None:
        """Add output lines; waits while the buffer is full."""
        kind = STREAMS.get(stream)
        if kind is None:
            raise ValueError(f"stream must be one of {', '.join(STREAMS)}, not {stream!r}")
        for line in split_lines(text):
            while self._bytes >= self._max_buffered:
                self._space.clear()
                self._signal(urgent=True)
                await self._space.wait()
            self._add(kind, line)

    def log(self, text: str) -> None:
        """Add a log record's lines from any thread, without waiting (dropped when full)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._log_now(text)
        else:
            self._loop.call_soon_threadsafe(self._log_now, text)

    @property
    def logger(self) -> logging.Logger:
        """A logger whose records become LOG lines of this attempt's output."""
        if self._logger is None:
            task_logger = logging.Logger(f"{TASK_LOGGER}.{self._envelope.task_id}", logging.INFO)
            task_logger.parent = logging.getLogger(TASK_LOGGER)
            task_logger.addHandler(_OutputHandler(self))
            self._logger = task_logger
        return self._logger

    # What run_attempt calls
    async def close(self) -> None:
        """Send everything still buffered (the attempt's result is written after this)."""
        self._closing = True
        if self._sender is None:
            if self._chunks or self._progress is not None or self._dropped_records:
                await self._send_all()
            return
        self._signal(urgent=True)
        await asyncio.shield(self._sender)

    def abort(self) -> None:
        """Stop sending (the attempt was cancelled); what is buffered is dropped."""
        self._closing = True
        if self._sender is not None:
            self._sender.cancel()

    # Buffering and sending
    def _add(self, kind: stream_pb2.OutputStream.ValueType, line: str) -> None:
        chunk = stream_pb2.OutputChunk(stream=kind, text=line, time=timestamp_now())
        self._chunks.append(chunk)
        self._bytes += len(line) + 16  # the text and about what a chunk adds to it
        self._signal(urgent=self._bytes >= FLUSH_BYTES)

    def _log_now(self, text: str) -> None:
        for line in split_lines(text):
            if self._bytes >= self._max_buffered or self._closing:
                self._dropped_records += 1
                continue
            self._add(stream_pb2.OUTPUT_STREAM_LOG, line)

    def _signal(self, urgent: bool = False) -> None:
        if self._closing and self._sender is None:
            return  # close() sends what is left itself
        self._pending.set()
        if urgent:
            self._urgent.set()
        if self._sender is None:
            self._sender = self._loop.create_task(self._run(), name="hivewire-reports")

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            if not self._closing and not self._urgent.is_set():
                # Coalesce: what arrives within the interval goes in the same report.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self._interval)
            await self._send_one()
            if not self._chunks and self._progress is None and not self._dropped_records:
                self._pending.clear()
                self._urgent.clear()
                if self._closing:
                    return
            elif not self._closing and self._bytes < FLUSH_BYTES:
                self._urgent.clear()

    async def _send_all(self) -> None:
        while self._chunks or self._progress is not None or self._dropped_records:
            await self._send_one()

    async def _send_one(self) -> None:
        """One report: the progress, and output up to MAX_REPORT_BYTES (none when empty)."""
        if not (self._chunks or self._progress is not None or self._dropped_records):
            return
        msg = stream_pb2.TaskResult()
        msg.CopyFrom(self.started)
        msg.outcome = stream_pb2.TASK_OUTCOME_PROGRESS
        if self._dropped_records:
            text = f"[{self._dropped_records} log lines dropped: the output buffer was full]"
            msg.output.add(stream=stream_pb2.OUTPUT_STREAM_LOG, text=text, time=timestamp_now())
            self._dropped_records = 0
        size = 0
        taken = 0
        for chunk in self._chunks:
            if taken and size + len(chunk.text) > MAX_REPORT_BYTES:
                break
            size += len(chunk.text) + 16
            taken += 1
        msg.output.extend(self._chunks[:taken])
        del self._chunks[:taken]
        self._bytes = max(0, self._bytes - size)
        if self._bytes < self._max_buffered:
            self._space.set()
        if self._progress is not None:
            msg.progress.CopyFrom(self._progress)
            self._progress = None
        try:
            await self._report(msg)
            self.reports_sent += 1
        except Exception:
            logger.warning(
                "could not send a progress report of task %s", self._envelope.task_id, exc_info=True
            )


class _OutputHandler(logging.Handler):
    """Turns an attempt logger's records into LOG lines of its output."""

    def __init__(self, reporter: AttemptReporter) -> None:
        super().__init__()
        self._reporter = reporter
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._reporter.log(self.format(record))
        except Exception:
            self.handleError(record)
