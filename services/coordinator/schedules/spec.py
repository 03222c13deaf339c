"""When a schedule fires: interval grids and cron expressions in an IANA time zone (pure logic).

Catch-up: `next_tick(spec, anchor, after)` is the first grid time strictly after `after`. The
firing loop passes the later of now and the claimed tick, so a schedule that missed several
ticks (every coordinator was down) fires once for all of them, then continues on its grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from hivewire.v1 import schedule_pb2
from hivewire_services.common.errors import InvalidArgument

MIN_INTERVAL_MS = 1000
MAX_INTERVAL_MS = 366 * 24 * 3600 * 1000
MAX_CRON = 256


@dataclass(frozen=True)
class Spec:
    """A checked spec: an interval in ms (0 for cron), or a cron expression and its zone."""

    interval_ms: int = 0
    cron: str = ""
    zone: str = "UTC"


def check_spec(spec: schedule_pb2.ScheduleSpec, field: str = "schedule.spec") -> Spec:
    """The spec checked: INVALID_ARGUMENT naming the field for a bad interval, cron or zone."""
    kind = spec.WhichOneof("kind")
    if kind == "interval":
        ms = spec.interval.seconds * 1000 + spec.interval.nanos // 1_000_000
        if not MIN_INTERVAL_MS <= ms <= MAX_INTERVAL_MS:
            raise InvalidArgument(
                "interval must be between 1 s and 366 days", field=f"{field}.interval"
            )
        return Spec(interval_ms=ms)
    if kind != "cron":
        raise InvalidArgument("a schedule needs an interval or a cron expression", field=field)
    zone = spec.time_zone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(
            f"unknown time zone {zone[:64]!r}", field=f"{field}.time_zone"
        ) from exc
    expr = " ".join(spec.cron.split())
    if len(expr) > MAX_CRON or len(expr.split(" ")) != 5 or not croniter.is_valid(expr):
        raise InvalidArgument(
            f"cron {expr[:64]!r} is not a valid 5-field cron expression", field=f"{field}.cron"
        )
    return Spec(cron=expr, zone=zone)


def next_tick(spec: Spec, anchor_ms: int, after_ms: int) -> int:
    """The first fire time (epoch ms) strictly after `after_ms`.

    An interval's grid is anchor + k * interval (k >= 1). A cron expression is read in the
    spec's zone: a local time skipped by a DST change fires at the first time after it, a
    repeated one fires once.
    """
    if spec.interval_ms:
        k = max(0, (after_ms - anchor_ms) // spec.interval_ms) + 1
        return anchor_ms + k * spec.interval_ms
    zone = ZoneInfo(spec.zone)
    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(zone)
    try:
        times = croniter(spec.cron, start)
        fire: datetime = times.get_next(datetime)
        # The second pass of a wall time the clocks went back over is no new fire time.
        while fire.fold == 1 and fire.replace(fold=0).utcoffset() != fire.utcoffset():
            fire = times.get_next(datetime)
    except CroniterBadDateError as exc:  # e.g. `0 0 30 2 *` never happens
        raise InvalidArgument(
            f"cron {spec.cron!r} never fires", field="schedule.spec.cron"
        ) from exc
    return int(fire.timestamp() * 1000)


def check_fires(spec: Spec, anchor_ms: int) -> int:
    """The first fire after `anchor_ms`; INVALID_ARGUMENT for a cron that never fires."""
    try:
        return next_tick(spec, anchor_ms, anchor_ms)
    except CroniterBadCronError as exc:
        raise InvalidArgument(str(exc), field="schedule.spec.cron") from exc
