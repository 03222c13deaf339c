"""PROGRESS reports as progress.lua takes them: the progress stamped, the output serialized."""

from __future__ import annotations

import math

from hivewire.core.clock import ms_of
from hivewire.v1 import stream_pb2
from hivewire_services.coordinator.tasks.scripts import ProgressReport, ProgressRow

MAX_PROGRESS_MESSAGE = 1024
"""Characters of a progress message kept (TaskProgress.message)."""


def stamped_progress(progress: stream_pb2.TaskProgress, now: int) -> stream_pb2.TaskProgress:
    """The progress as the task stores it: the fraction clamped to 0..1 (dropped when not a
    number), the message bounded, the time set to `now` (ms)."""
    out = stream_pb2.TaskProgress(message=progress.message[:MAX_PROGRESS_MESSAGE])
    if progress.HasField("fraction") and not math.isnan(progress.fraction):
        out.fraction = min(1.0, max(0.0, progress.fraction))
    out.time.FromMilliseconds(now)
    return out


def chunk_bytes(chunk: stream_pb2.OutputChunk, now: int) -> bytes:
    """An output chunk as stored: its time defaults to `now` (ms); a cursor is never stored."""
    if chunk.HasField("time") and not chunk.cursor:
        return chunk.SerializeToString()
    stored = stream_pb2.OutputChunk(stream=chunk.stream, text=chunk.text)
    if chunk.HasField("time"):
        stored.time.CopyFrom(chunk.time)
    else:
        stored.time.FromMilliseconds(now)
    return stored.SerializeToString()


def progress_report(entry_id: bytes, result: stream_pb2.TaskResult, now: int) -> ProgressReport:
    """The progress.lua report of one PROGRESS TaskResult read from `entry_id`."""
    progress, message = b"", ""
    if result.HasField("progress"):
        stamped = stamped_progress(result.progress, now)
        progress, message = stamped.SerializeToString(), stamped.message
    chunks = [chunk_bytes(c, now) for c in result.output]
    reported = ms_of(result, "start_time")
    start_ms: int | str = now if reported is None else reported
    row = ProgressRow(
        entry_id,
        result.task_id,
        result.attempt,
        result.attempt_token,
        result.agent_id,
        start_ms,
        progress,
        message,
        len(chunks),
    )
    return ProgressReport(row, chunks)
