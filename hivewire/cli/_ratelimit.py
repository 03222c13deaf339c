"""`hivewire ratelimit set|list|delete`: named rate limits tasks draw units from."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from hivewire.cli._call import call
from hivewire.cli._format import dumps, table

ratelimit_app = typer.Typer(
    help="Named rate limits: tasks take units from them (submit --rate-limit NAME:UNITS).",
    no_args_is_help=True,
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, option: str) -> float:
    """Seconds of "500ms", "30s", "1m", "2h", "1d" (a bare number is seconds)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 1m or 30s", param_hint=option)
    return float(match[1]) * _UNIT_SECONDS[match[2] or "s"]


def parse_units(items: list[str], option: str) -> dict[str, int]:
    """NAME:UNITS pairs (repeatable option) as a mapping; UNITS defaults to 1."""
    out: dict[str, int] = {}
    for item in items:
        name, _, units = item.rpartition(":") if ":" in item else (item, "", "1")
        if not name or not units.isdigit():
            raise typer.BadParameter(f"{item!r} is not NAME:UNITS", param_hint=option)
        out[name] = out.get(name, 0) + int(units)
    return out


@ratelimit_app.command("set")
def ratelimit_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name tasks refer to (like a capability).")],
    limit: Annotated[int, typer.Option(help="Units allowed per window.", min=1)],
    per: Annotated[str, typer.Option(help="Window length: 100ms..1d, e.g. 1s, 1m, 1h.")] = "1m",
) -> None:
    """Create or replace a rate limit: --limit units per fixed window of --per."""
    seconds = parse_duration(per, "--per")
    stored = call(ctx, lambda c: c.set_rate_limit(name, limit, seconds))
    typer.echo(f"{stored.name}: {stored.limit} per {stored.window.ToMilliseconds() / 1000:g}s")


@ratelimit_app.command("list")
def ratelimit_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List rate limits with the units used in the current window and the tasks waiting."""
    limits = call(ctx, lambda c: c.list_rate_limits())
    if as_json:
        typer.echo(
            dumps(
                [
                    {
                        "name": u.limit.name,
                        "limit": u.limit.limit,
                        "window_seconds": u.limit.window.ToMilliseconds() / 1000,
                        "used": u.used,
                        "waiting_tasks": u.waiting_tasks,
                    }
                    for u in limits
                ]
            )
        )
        return
    rows = [
        [
            u.limit.name,
            str(u.limit.limit),
            f"{u.limit.window.ToMilliseconds() / 1000:g}s",
            str(u.used),
            str(u.waiting_tasks),
        ]
        for u in limits
    ]
    typer.echo(table(["NAME", "LIMIT", "WINDOW", "USED", "WAITING"], rows))


@ratelimit_app.command("delete")
def ratelimit_delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Name of the limit.")]
) -> None:
    """Delete a rate limit; tasks that named it no longer wait for it."""
    call(ctx, lambda c: c.delete_rate_limit(name))
    typer.echo(f"deleted {name}")
