"""`hivewire tls init`: the CA and certificates of a deployment (docker compose, a few hosts),
made by the same local CA code as `hivewire up --secure`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hivewire.cli.local_tls import ensure_local_tls
from hivewire.core.client_config import DEFAULT_DATA_DIR, write_client_config
from hivewire.core.tls import tls_env

# The service names of docker-compose.yml: the names the services dial each other by.
COMPOSE_HOSTS = ("registry", "coordinator", "gateway")

tls_app = typer.Typer(
    help="Certificates for TLS and mTLS (docs/security.md).", no_args_is_help=True
)


@tls_app.command("init")
def tls_init(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where to write the CA and certificates (made 0700).")
    ] = Path("secrets"),
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name or address the server certificate must hold (repeatable); the "
            "compose service names and the loopback names are always in it."
        ),
    ] = None,
    client_env: Annotated[
        bool,
        typer.Option(
            help="Also write .hivewire/client.env here, so the CLI and SDKs run from this "
            "directory dial the stack with the client certificate."
        ),
    ] = True,
) -> None:
    """Make (or renew) a CA, a server certificate for every service (SANs: registry,
    coordinator, gateway, localhost, 127.0.0.1, ::1 and each --host) and a client certificate
    for the CLI and agents. Files still good are kept; run it again to renew."""
    files, written = ensure_local_tls(directory, [*COMPOSE_HOSTS, *(host or [])])
    typer.echo(f"{files.directory}: {'made ' + ', '.join(written) if written else 'all reused'}")
    if client_env:
        absolute = type(files)(files.directory.resolve())
        data_dir = Path(DEFAULT_DATA_DIR)
        data_dir.mkdir(mode=0o700, exist_ok=True)
        path = write_client_config(data_dir, tls_env(absolute.client()))
        typer.echo(f"{path}: the client certificate for the CLI and SDKs run here")
