"""The `hivewire` command, and the local stack it runs (`hivewire up`: supervisor, embedded Redis,
demo agents)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hivewire.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """The `hivewire` entry point. `hivewire healthcheck`, which container probes run every few
    seconds, loads only what it needs (about a fifth of the CPU of loading the whole CLI)."""
    if sys.argv[1:2] == ["healthcheck"]:
        from hivewire.cli._health import run_probe

        sys.exit(run_probe(sys.argv[2:]))
    from hivewire.cli._app import main as run_cli

    run_cli()


def __getattr__(name: str) -> Any:
    if name == "app":  # loaded on first use: `main` may not need it
        from hivewire.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
