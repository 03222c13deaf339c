"""Schedule specs: interval grids, catch-up, cron in a time zone (DST), and rejected specs."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import typer

from hivewire.cli._schedule import parse_duration
from hivewire.v1 import schedule_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.coordinator.schedules.spec import Spec, check_fires, check_spec, next_tick

BERLIN = ZoneInfo("Europe/Berlin")


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def local(ms_value: int, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromtimestamp(ms_value / 1000, tz=UTC).astimezone(zone)


def cron(expr: str, zone: str = "") -> Spec:
    return check_spec(schedule_pb2.ScheduleSpec(cron=expr, time_zone=zone))


def test_interval_grid_is_anchored_and_catches_up_once() -> None:
    spec = Spec(interval_ms=1000)
    assert next_tick(spec, 5_000, 5_000) == 6_000
    assert next_tick(spec, 5_000, 5_999) == 6_000
    assert next_tick(spec, 5_000, 6_000) == 7_000
    # Down from 6.0 s to 42.5 s: the one catch-up fire claims the 6 s tick, the next is 43 s.
    assert next_tick(spec, 5_000, 42_500) == 43_000


def test_cron_in_a_time_zone() -> None:
    spec = cron("0 9 * * MON-FRI", "Europe/Berlin")
    friday_noon = ms(datetime(2026, 12, 4, 12, 0, tzinfo=BERLIN))
    fire = local(next_tick(spec, 0, friday_noon))
    assert (fire.weekday(), fire.hour, fire.minute) == (0, 9, 0)  # Monday 09:00 in Berlin
    assert fire.utcoffset() is not None and fire.utcoffset().total_seconds() == 3600  # type: ignore[union-attr]
    steps = cron("*/15 8-10 1,15 JAN,JUL *")
    t = next_tick(steps, 0, ms(datetime(2026, 1, 1, 10, 50, tzinfo=UTC)))
    assert datetime.fromtimestamp(t / 1000, tz=UTC) == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


def test_cron_across_dst_changes() -> None:
    spec = cron("30 2 * * *", "Europe/Berlin")
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): it fires once,
    # at the first time after the gap, then at 02:30 again the next day.
    before = ms(datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    first = next_tick(spec, 0, before)
    second = next_tick(spec, 0, first)
    assert (local(first).day, local(first).hour, local(first).minute) == (29, 3, 0)
    assert (local(second).day, local(second).hour, local(second).minute) == (30, 2, 30)
    # 2026-10-25 02:30 happens twice (clocks go back 03:00 -> 02:00): it fires once that day.
    autumn = ms(datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN))
    a = next_tick(spec, 0, autumn)
    b = next_tick(spec, 0, a)
    assert local(a).day == 25 and local(b).day == 26


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (schedule_pb2.ScheduleSpec(), "schedule.spec"),
        (schedule_pb2.ScheduleSpec(cron="* * * *"), "schedule.spec.cron"),
        (schedule_pb2.ScheduleSpec(cron="0 25 * * *"), "schedule.spec.cron"),
        (schedule_pb2.ScheduleSpec(cron="0 9 * * FOO"), "schedule.spec.cron"),
        (schedule_pb2.ScheduleSpec(cron="0 9 * * *", time_zone="Nowhere/Land"),
         "schedule.spec.time_zone"),
    ],
)  # fmt: skip
def test_bad_specs_name_the_field(spec: schedule_pb2.ScheduleSpec, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_spec(spec)
    assert info.value.violations[0].field == field


def test_intervals_below_one_second_and_crons_that_never_fire_are_refused() -> None:
    short = schedule_pb2.ScheduleSpec()
    short.interval.FromMilliseconds(999)
    with pytest.raises(InvalidArgument) as info:
        check_spec(short)
    assert info.value.violations[0].field == "schedule.spec.interval"
    with pytest.raises(InvalidArgument):
        check_fires(cron("0 0 30 2 *"), 0)


def test_cli_durations() -> None:
    assert parse_duration("10s") == 10
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2") == 2
    with pytest.raises(typer.BadParameter):
        parse_duration("10 parsecs")
