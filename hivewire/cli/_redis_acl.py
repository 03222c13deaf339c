"""`hivewire redis-acl`: the services' Redis ACL users, printed (or written) ready to apply."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from hivewire.cli.redis_users import ACL_MODULE
from hivewire.core.redis_users import PASSWORDS_FILE


def redis_acl(
    namespace: Annotated[
        str | None, typer.Option(help="Key namespace (default $HIVEWIRE_NAMESPACE or hw).")
    ] = None,
    passwords: Annotated[
        Path,
        typer.Option(help="JSON file of the users' passwords, created (mode 0600) if missing."),
    ] = Path(".hivewire") / PASSWORDS_FILE,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="setuser: ACL SETUSER lines for redis-cli; aclfile: a whole ACL file "
            "(default user off, an admin user).",
        ),
    ] = "setuser",
    out: Annotated[
        Path | None, typer.Option(help="Write here (mode 0600) instead of stdout.")
    ] = None,
    agent_users: Annotated[
        bool,
        typer.Option(help="Let the registry make a Redis user per direct-Redis agent."),
    ] = True,
) -> None:
    """Print the Redis users of the registry, coordinator, gateway and hooks runner: each may
    run only the commands it needs on the keys it touches (docs/security.md, Redis)."""
    argv = [sys.executable, "-m", ACL_MODULE, "--passwords", str(passwords), "--format", fmt]
    if namespace:
        argv += ["--namespace", namespace]
    if out is not None:
        argv += ["--out", str(out)]
    if not agent_users:
        argv.append("--no-agent-users")
    raise typer.Exit(subprocess.run(argv, check=False).returncode)
