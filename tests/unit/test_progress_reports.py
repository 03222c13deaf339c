"""PROGRESS TaskResults as progress.lua takes them: progress stamped and bounded, chunks timed."""

from __future__ import annotations

import math

from hivewire.v1 import stream_pb2
from hivewire_services.coordinator.tasks.progress_reports import (
    MAX_PROGRESS_MESSAGE,
    chunk_bytes,
    progress_report,
    stamped_progress,
)

NOW = 1_800_000_000_000


def test_progress_is_clamped_bounded_and_stamped() -> None:
    p = stamped_progress(stream_pb2.TaskProgress(fraction=1.5, message="x" * 5000), NOW)
    assert (p.fraction, len(p.message), p.time.ToMilliseconds()) == (1.0, MAX_PROGRESS_MESSAGE, NOW)
    assert stamped_progress(stream_pb2.TaskProgress(fraction=-2), NOW).fraction == 0.0
    assert not stamped_progress(stream_pb2.TaskProgress(fraction=math.nan), NOW).HasField(
        "fraction"
    )
    assert not stamped_progress(stream_pb2.TaskProgress(message="m"), NOW).HasField("fraction")


def test_chunks_keep_their_time_or_get_now_and_never_a_cursor() -> None:
    timed = stream_pb2.OutputChunk(text="a")
    timed.time.FromMilliseconds(NOW - 5)
    assert chunk_bytes(timed, NOW) == timed.SerializeToString()
    stored = stream_pb2.OutputChunk.FromString(
        chunk_bytes(stream_pb2.OutputChunk(text="b", cursor="1-1"), NOW)
    )
    assert (stored.text, stored.cursor, stored.time.ToMilliseconds()) == ("b", "", NOW)


def test_a_report_row_counts_its_chunks() -> None:
    result = stream_pb2.TaskResult(
        task_id="t" * 32,
        attempt=3,
        attempt_token="k",
        agent_id="g",
        outcome=stream_pb2.TASK_OUTCOME_PROGRESS,
        output=[stream_pb2.OutputChunk(text="1"), stream_pb2.OutputChunk(text="2")],
    )
    row, chunks = progress_report(b"5-0", result, NOW)
    assert (row.entry_id, row.task_id, row.attempt, row.token, row.chunks) == (
        b"5-0", "t" * 32, 3, "k", 2
    )  # fmt: skip
    assert (row.progress, row.message, row.start_ms) == (b"", "", NOW)
    assert [stream_pb2.OutputChunk.FromString(c).text for c in chunks] == ["1", "2"]
    result.progress.message = "half"
    row, _ = progress_report(b"5-1", result, NOW)
    assert stream_pb2.TaskProgress.FromString(row.progress).message == row.message == "half"
