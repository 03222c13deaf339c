"""`hivewire secrets init` (also `hivewire tls init`): the CA, certificates and tokens of a
deployment (docker compose, a few hosts), made by the same local CA code as `hivewire up
--secure`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hivewire.cli.compose_tokens import ensure_compose_tokens
from hivewire.cli.local_tls import ensure_local_tls
from hivewire.cli.up_auth import ADMIN
from hivewire.core.client_config import DEFAULT_DATA_DIR, write_client_config
from hivewire.core.credentials import TOKEN
from hivewire.core.tls import tls_env

# The service names of docker-compose.yml: the names the services dial each other by.
COMPOSE_HOSTS = ("registry", "coordinator", "gateway")

tls_app = typer.Typer(
    help="Certificates for TLS and mTLS (docs/security.md).", no_args_is_help=True
)
secrets_app = typer.Typer(
    help="The certificates and tokens of a deployment (docs/security.md).", no_args_is_help=True
)


def secrets_init(
    directory: Annotated[
        Path,
        typer.Option("--dir", help="Where to write the CA, certificates and tokens (made 0700)."),
    ] = Path("secrets"),
    host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name or address the server certificate must hold (repeatable); the "
            "compose service names and the loopback names are always in it."
        ),
    ] = None,
    tokens: Annotated[
        bool,
        typer.Option(
            help="Also make the tokens docker-compose.yml mounts: service.token, admin.token, "
            "an agent-<name>.token per demo agent, and tokens.json (their hashes, which the "
            "gateway imports)."
        ),
    ] = True,
    client_env: Annotated[
        bool,
        typer.Option(
            help="Also write .hivewire/client.env here, so the CLI and SDKs run from this "
            "directory dial the stack with the client certificate (and the admin token)."
        ),
    ] = True,
) -> None:
    """Make (or renew) a CA, a server certificate for every service (SANs: registry,
    coordinator, gateway, localhost, 127.0.0.1, ::1 and each --host), a client certificate for
    the CLI and agents, and the tokens of docker-compose.yml, each in its own 0600 file. Files
    still good are kept; run it again to renew; delete a token's file to replace that token."""
    files, written = ensure_local_tls(directory, [*COMPOSE_HOSTS, *(host or [])])
    issued: dict[str, str] = {}
    if tokens:
        issued, made = ensure_compose_tokens(files.directory)
        written = [*written, *made]
    typer.echo(f"{files.directory}: {'made ' + ', '.join(written) if written else 'all reused'}")
    if client_env:
        absolute = type(files)(files.directory.resolve())
        data_dir = Path(DEFAULT_DATA_DIR)
        data_dir.mkdir(mode=0o700, exist_ok=True)
        values = dict(tls_env(absolute.client()))
        if ADMIN in issued:
            values[TOKEN] = issued[ADMIN]
        path = write_client_config(data_dir, values)
        what = "the client certificate" + (" and the admin token" if ADMIN in issued else "")
        typer.echo(f"{path}: {what} for the CLI and SDKs run here")


secrets_app.command("init")(secrets_init)
tls_app.command("init", help="The same as `hivewire secrets init`.")(secrets_init)
