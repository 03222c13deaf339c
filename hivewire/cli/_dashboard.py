"""`hivewire dashboard`: the live terminal dashboard."""

from __future__ import annotations

from typing import Annotated

import typer

from hivewire.cli._call import gateway_addr


def dashboard(
    ctx: typer.Context,
    interval: Annotated[
        float, typer.Option(help="Seconds between stats updates (0.1..60).", min=0.1, max=60)
    ] = 1.0,
) -> None:
    """Live dashboard: agents, queues, workflows and events (q quit, f filter, p pause)."""
    from hivewire.dashboard import Dashboard  # Textual loads only for this command

    Dashboard(gateway_addr(ctx), stats_interval=interval).run()
