"""The delayed-start options: durations, times, and the SDK's checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import typer

from hivewire.cli._delay import parse_duration, parse_time, start_options
from hivewire.client._client import _submit_request


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("1.5m", 90), ("2h", 7200), ("1d", 86400), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "-5s", "5 weeks", "1w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="not a duration"):
        parse_duration(text)


def test_times_need_a_zone() -> None:
    assert parse_time("2027-01-01T09:00:00Z") == datetime(2027, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(typer.BadParameter, match="with a zone"):
        parse_time("2027-01-01T09:00:00")
    with pytest.raises(typer.BadParameter, match="with a zone"):
        parse_time("tomorrow")


def test_both_options_are_refused() -> None:
    with pytest.raises(typer.BadParameter, match="not both"):
        start_options("30s", "2027-01-01T09:00:00Z")
    assert start_options(None, None) == (None, None)


def test_sdk_sets_the_delay_fields() -> None:
    req = _submit_request("echo", None, start_after=timedelta(minutes=2))
    assert req.start_after.ToSeconds() == 120 and not req.HasField("start_at")
    at = datetime(2027, 1, 1, 9, tzinfo=UTC)
    req = _submit_request("echo", None, start_at=at)
    assert req.start_at.ToDatetime(tzinfo=UTC) == at and not req.HasField("start_after")
    with pytest.raises(ValueError, match="timezone-aware"):
        _submit_request("echo", None, start_at=datetime(2027, 1, 1, 9))  # noqa: DTZ001
