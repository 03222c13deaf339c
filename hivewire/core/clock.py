"""Wall-clock helpers shared by SDK and services: epoch milliseconds and protobuf times."""

from __future__ import annotations

import time

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import Message

__all__ = ["duration_from_seconds", "ms_of", "now_ms", "set_ms", "timestamp_now", "ts_from_ms"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def timestamp_now() -> timestamp_pb2.Timestamp:
    # Timestamp.GetCurrentTime goes through datetime; this is the same value, cheaper.
    ns = time.time_ns()
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def ts_from_ms(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def duration_from_seconds(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def set_ms(msg: Message, field: str, ms: int) -> None:
    """Set a Timestamp or Duration field from milliseconds; zero (not recorded) leaves it unset."""
    if ms:
        getattr(msg, field).FromMilliseconds(ms)


def ms_of(msg: Message, field: str) -> int | None:
    """A Timestamp or Duration field in milliseconds; None when it is unset or no valid time
    (a Timestamp whose nanos are out of range: protobuf raises ValueError reading it)."""
    if not msg.HasField(field):
        return None
    try:
        return int(getattr(msg, field).ToMilliseconds())
    except ValueError:
        return None
