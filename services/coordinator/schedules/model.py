"""A schedule's Redis hash <-> the Schedule message."""

from __future__ import annotations

from dataclasses import dataclass

from hivewire.core.clock import ts_from_ms
from hivewire.v1 import schedule_pb2

FIELDS = (
    "def", "tenant", "overlap", "anchor_ms", "next_ms", "paused", "fired", "skipped",
    "buffered_ms", "last_ms", "last_run", "last_kind",
)  # fmt: skip


@dataclass(frozen=True)
class StoredSchedule:
    """A schedule as the firing loop reads it."""

    name: str
    definition: schedule_pb2.Schedule
    tenant: str
    overlap: int
    anchor_ms: int
    next_ms: int
    paused: bool
    fired: int
    skipped: int
    buffered_ms: int
    last_ms: int
    last_run: str
    last_kind: str

    def to_proto(self) -> schedule_pb2.Schedule:
        out = schedule_pb2.Schedule()
        out.CopyFrom(self.definition)
        out.paused = self.paused
        if not self.paused and self.next_ms:
            out.next_fire_time.CopyFrom(ts_from_ms(self.next_ms))
        if self.last_ms:
            out.last_fire_time.CopyFrom(ts_from_ms(self.last_ms))
        out.last_run_id = self.last_run
        out.fired_count = self.fired
        out.skipped_count = self.skipped
        out.buffered = self.buffered_ms > 0
        return out


def from_values(name: str, values: list[bytes | None]) -> StoredSchedule | None:
    """The schedule from HMGET of FIELDS; None when it does not exist."""
    row = dict(zip(FIELDS, values, strict=True))
    raw = row["def"]
    if raw is None:
        return None

    def text(field: str) -> str:
        value = row[field]
        return value.decode() if value is not None else ""

    def number(field: str) -> int:
        value = row[field]
        return int(value) if value else 0

    definition = schedule_pb2.Schedule.FromString(raw)
    return StoredSchedule(
        name=name,
        definition=definition,
        tenant=text("tenant"),
        overlap=number("overlap"),
        anchor_ms=number("anchor_ms"),
        next_ms=number("next_ms"),
        paused=text("paused") == "1",
        fired=number("fired"),
        skipped=number("skipped"),
        buffered_ms=number("buffered_ms"),
        last_ms=number("last_ms"),
        last_run=text("last_run"),
        last_kind=text("last_kind"),
    )
