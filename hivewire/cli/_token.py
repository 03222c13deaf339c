"""`hivewire token create|list|revoke` and `hivewire audit`: API tokens and denied calls from
the command line (admin token required; docs/security.md, Tokens and roles)."""

from __future__ import annotations

from typing import Annotated

import typer

from hivewire.cli._call import call
from hivewire.cli._format import dumps, short, table
from hivewire.core.convert import iso_time

token_app = typer.Typer(
    help="Create, list or revoke API tokens (needs an admin token).", no_args_is_help=True
)
ROLES_HELP = "admin (everything), client (submit and read), viewer (read), agent (run tasks)."


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Unique token name (its principal).")],
    role: Annotated[str, typer.Option("--role", help=ROLES_HELP)],
    tenant: Annotated[
        str, typer.Option("--tenant", help="Tenant whose work it sees (default: the name).")
    ] = "",
    capabilities: Annotated[
        str,
        typer.Option(
            "--capabilities", help="Agent tokens: comma-separated capabilities it may register."
        ),
    ] = "",
) -> None:
    """Create a token and print it as the last line: it is shown this once."""
    caps = [c.strip() for c in capabilities.split(",") if c.strip()]
    reply = call(ctx, lambda c: c.create_token(name, role, tenant=tenant, capabilities=caps))
    info = reply.info
    caps_text = f" capabilities {','.join(info.capabilities)}" if info.capabilities else ""
    typer.echo(f"created {info.name} (role {info.role}, tenant {info.tenant}{caps_text})", err=True)
    typer.echo(reply.token)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List tokens (names, roles, tenants; never the secrets)."""
    tokens = call(ctx, lambda c: c.list_tokens())
    records = [
        {
            "name": t.name,
            "role": t.role,
            "tenant": t.tenant,
            "capabilities": list(t.capabilities),
            "create_time": iso_time(t, "create_time"),
            "revoked": t.revoked,
        }
        for t in tokens
    ]
    if as_json:
        typer.echo(dumps(records))
        return
    rows = [
        [
            str(r["name"]),
            str(r["role"]),
            str(r["tenant"]),
            ",".join(r["capabilities"]) or "-",  # type: ignore[arg-type]
            str(r["create_time"] or ""),
            "revoked" if r["revoked"] else "active",
        ]
        for r in records
    ]
    typer.echo(table(["NAME", "ROLE", "TENANT", "CAPABILITIES", "CREATED", "STATE"], rows))


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the token to revoke.")],
) -> None:
    """Revoke a token: every service refuses it within its token cache time (2 s by default)."""
    call(ctx, lambda c: c.revoke_token(name))
    typer.echo(f"revoked {name}")


def audit(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many entries.", min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Show the newest denied calls (UNAUTHENTICATED, PERMISSION_DENIED)."""
    entries = call(ctx, lambda c: c.audit_entries(limit))
    records = [
        {
            "time": iso_time(e, "time"),
            "service": e.service,
            "method": e.method,
            "principal": e.principal,
            "peer": e.peer,
            "code": e.code,
            "reason": e.reason,
        }
        for e in entries
    ]
    if as_json:
        typer.echo(dumps(records))
        return
    rows = [
        [
            str(r["time"] or ""),
            str(r["code"]),
            str(r["method"]).rpartition("/")[2],
            str(r["principal"] or "-"),
            short(str(r["reason"])),
        ]
        for r in records
    ]
    typer.echo(table(["TIME", "CODE", "METHOD", "PRINCIPAL", "REASON"], rows))
