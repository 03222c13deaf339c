"""The --start-after / --start-at options of the submit commands: a delayed start."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

import typer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")


def parse_duration(text: str, option: str = "--start-after") -> timedelta:
    """`30`, `30s`, `1.5m`, `2h`, `1d`, `250ms` (a bare number is seconds)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration like 30s, 5m, 2h or 1d", param_hint=option
        )
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def parse_time(text: str, option: str = "--start-at") -> datetime:
    """An ISO 8601 time with a zone (`2027-01-01T09:00:00Z`, `...+02:00`)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 time with a zone, like 2027-01-01T09:00:00Z",
            param_hint=option,
        )
    return when


def start_options(
    start_after: str | None, start_at: str | None
) -> tuple[timedelta | None, datetime | None]:
    """The parsed options; both set is an error."""
    if start_after is not None and start_at is not None:
        raise typer.BadParameter("use --start-after or --start-at, not both")
    return (
        parse_duration(start_after) if start_after is not None else None,
        parse_time(start_at) if start_at is not None else None,
    )


StartAfterOpt = Annotated[
    str | None,
    typer.Option(
        help="Start no earlier than this long from now (30s, 5m, 2h, 1d); the task waits "
        "SCHEDULED until then (at most 365 days).",
        show_default=False,
    ),
]
StartAtOpt = Annotated[
    str | None,
    typer.Option(
        help="Start no earlier than this time (ISO 8601 with a zone, e.g. "
        "2027-01-01T09:00:00Z); the task waits SCHEDULED until then.",
        show_default=False,
    ),
]
