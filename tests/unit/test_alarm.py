"""The alarm of the timed loops: first wait at once, then until the earliest due time asked
for, woken early by an earlier one, never past its longest sleep; and the outage hold."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from hivewire.core.clock import now_ms
from hivewire_services.common.alarm import Alarm, OutageHold, due_ms


async def timed_wait(alarm: Alarm) -> float:
    started = time.monotonic()
    await alarm.wait()
    return time.monotonic() - started


async def test_the_first_wait_returns_at_once_then_the_alarm_sleeps_until_asked() -> None:
    alarm = Alarm(longest=60)
    assert await timed_wait(alarm) < 1.0
    alarm.at(now_ms() + 300)
    elapsed = await timed_wait(alarm)
    assert 0.25 <= elapsed < 5.0
    assert alarm.due_ms == math.inf  # cleared: the next pass asks again
    assert alarm.wakeups == 2


async def test_an_earlier_due_time_wakes_a_sleeping_alarm() -> None:
    alarm = Alarm(longest=60)
    await alarm.wait()
    alarm.at(now_ms() + 60_000)
    sleeper = asyncio.create_task(timed_wait(alarm))
    await asyncio.sleep(0)  # it is asleep now, a minute out
    alarm.at(now_ms() + 200)
    alarm.at(now_ms() + 30_000)  # a later one changes nothing
    elapsed = await asyncio.wait_for(sleeper, 10)
    assert 0.15 <= elapsed < 5.0


async def test_now_wakes_at_once_and_a_due_time_given_during_a_pass_is_kept() -> None:
    alarm = Alarm(longest=60)
    await alarm.wait()
    sleeper = asyncio.create_task(timed_wait(alarm))
    await asyncio.sleep(0)
    alarm.now()
    assert await asyncio.wait_for(sleeper, 10) < 5.0
    alarm.at(now_ms() - 1)  # asked while "the pass" runs: the next wait returns at once
    assert await timed_wait(alarm) < 1.0


async def test_no_sleep_outlasts_the_longest() -> None:
    alarm = Alarm(longest=0.2)
    await alarm.wait()
    alarm.at(None)  # nothing due: only the safety pass
    assert 0.15 <= await timed_wait(alarm) < 5.0
    with pytest.raises(ValueError):
        Alarm(longest=0)


def test_due_times_from_scripts() -> None:
    assert due_ms(b"1700000000000") == 1_700_000_000_000
    assert due_ms(b"1700000000000.5") == 1_700_000_000_000
    assert due_ms(-1) is None
    assert due_ms(b"-1") is None
    assert due_ms(None) is None


def test_outage_hold_counts_from_the_latest_recovery_seen() -> None:
    probe = {"ms": 0}
    hold = OutageHold(3.0, lambda: probe["ms"])
    assert hold.until_ms() == 0  # never lost: nothing held
    probe["ms"] = 1_000_000
    assert hold.until_ms() == 1_003_000  # the probe saw Redis come back
    hold.recovered()  # the loop saw it later
    assert now_ms() + 2_000 < hold.until_ms() <= now_ms() + 3_000
