"""`hivewire hooks check FILE`: validate a hooks file and show what each hook does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from hivewire.core.defaults import env
from hivewire.core.event_names import event_name
from hivewire.core.hooks_file import DEFAULT_MAX_ATTEMPTS, CommandAction, load_hooks

EXIT_BAD_FILE = 2

hooks_app = typer.Typer(help="Hooks (docs/hooks.md).", no_args_is_help=True)


@hooks_app.command("check")
def check(
    path: Annotated[
        Path | None, typer.Argument(help="Hooks file (default $HIVEWIRE_HOOKS_FILE).")
    ] = None,
) -> None:
    """Validate a hooks file the way the hooks runner will; print one line per hook."""

    target = path or Path(os.environ.get("HIVEWIRE_HOOKS_FILE") or "")
    if not str(target) or str(target) == ".":
        raise typer.BadParameter("give a file or set HIVEWIRE_HOOKS_FILE", param_hint="PATH")
    try:
        max_attempts = int(env("HOOKS_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS)))
        config = load_hooks(target, os.environ, max_attempts)
    except ValueError as exc:  # HooksFileError, or a bad HIVEWIRE_* number
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_FILE) from None
    for hook in config.hooks:
        on = ",".join(sorted(event_name(t) for t in hook.on))
        if isinstance(hook.action, CommandAction):
            action = "command " + " ".join(hook.action.argv)
        else:
            action = f"webhook {_origin(hook.action.url)}"
        parts = (
            [f"capability={','.join(sorted(hook.filter.capabilities))}"]
            if hook.filter.capabilities
            else []
        )
        parts += (
            [f"command={','.join(sorted(hook.filter.commands))}"] if hook.filter.commands else []
        )
        parts += [f"{k}={v}" for k, v in sorted(hook.filter.labels.items())]
        where = f" [{' '.join(parts)}]" if parts else ""
        typer.echo(
            f"{hook.name}: on {on}{where} -> {action} (timeout {hook.timeout:g}s, "
            f"{hook.max_attempts} attempts)"
        )
    typer.echo(f"{target}: {len(config.hooks)} hook(s), valid")


def _origin(url: str) -> str:
    """Scheme and host only: webhook paths often carry a token (Slack, Discord, ...)."""
    parts = urlsplit(url)
    rest = "/..." if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc}{rest}"
