"""Wall-clock helpers: milliseconds since the epoch and protobuf Timestamps."""

from __future__ import annotations

import time

from google.protobuf import duration_pb2, timestamp_pb2


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ts_from_ms(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def duration_from_seconds(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d
