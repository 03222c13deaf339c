"""`hivewire dashboard`: the live terminal dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR, env


def dashboard(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option(help="Seconds between stats updates (0.1..60).", min=0.1, max=60)
    ] = 1.0,
) -> None:
    """Live dashboard: agents, queues, workflows and events (q quit, f filter, p pause)."""
    from hivewire.dashboard import Dashboard  # Textual loads only for this command

    addr = str(ctx.obj["addr"]) if ctx.obj else env("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR)
    Dashboard(addr, stats_interval=interval).run()
