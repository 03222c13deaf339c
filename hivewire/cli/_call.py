"""How CLI commands call the gateway: one Client; errors as one stderr line and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
import typer

from hivewire.cli._format import format_rpc_error
from hivewire.client import Client
from hivewire.core.credentials import CredentialError
from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR, client_setting
from hivewire.core.tls import TlsError

T = TypeVar("T")

EXIT_TASK_FAILED = 1
EXIT_RPC_ERROR = 2


def gateway_addr(ctx: typer.Context) -> str:
    """--addr if given (stored on the context by the root callback), else HIVEWIRE_GATEWAY_ADDR,
    else the client config `hivewire up` wrote."""
    return str(ctx.obj["addr"]) if ctx.obj else client_setting("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR)


def call(ctx: typer.Context, fn: Callable[[Client], Awaitable[T]], timeout: float = 10.0) -> T:
    """Run `fn` with a Client; a gRPC error exits 2, a wait that timed out exits 1."""

    async def main() -> T:
        async with Client(gateway_addr(ctx), timeout=timeout) as client:
            return await fn(client)

    try:
        return asyncio.run(main())
    except grpc.aio.AioRpcError as exc:
        typer.echo(format_rpc_error(exc), err=True)
        raise typer.Exit(EXIT_RPC_ERROR) from None
    except (TlsError, CredentialError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_RPC_ERROR) from None
    except TimeoutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_TASK_FAILED) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


async def first(items: AsyncIterator[T], limit: int) -> list[T]:
    """At most `limit` items, the rest left unread (a list command's --limit)."""
    out: list[T] = []
    async for item in items:
        out.append(item)
        if len(out) >= limit:
            break
    return out


def key_values(items: list[str], option: str) -> dict[str, str]:
    """Repeated `key=value` option values as a dict; BadParameter names `option`."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint=option)
        out[key] = value
    return out
