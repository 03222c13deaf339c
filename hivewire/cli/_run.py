"""`hivewire up` and `hivewire agent`: the long-running commands."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import grpc
import typer

from hivewire.agent import Agent, run_agent
from hivewire.cli._format import format_rpc_error
from hivewire.cli.demo import build_agent
from hivewire.core.client_config import DEFAULT_DATA_DIR
from hivewire.core.defaults import (
    DEFAULT_COORDINATOR_ADDR,
    DEFAULT_GATEWAY_ADDR,
    DEFAULT_REGISTRY_ADDR,
    env,
)
from hivewire.core.tls import (
    PLAINTEXT,
    PlaintextBindError,
    TlsError,
    check_plaintext_bind,
    is_loopback,
    tls_from_env,
)

EXIT_RPC_ERROR = 2
DEFAULT_HOOKS_ADDR = "127.0.0.1:50054"


def up(
    demo: Annotated[bool, typer.Option(help="Also start two demo agents.")] = False,
    redis_url: Annotated[
        str | None, typer.Option(help="Use this Redis instead of starting one.")
    ] = None,
    redis_port: Annotated[int, typer.Option(help="Port of the embedded Redis.")] = 6390,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="Data directory: the embedded Redis, certificates, the client config.",
            envvar="HIVEWIRE_DATA_DIR",
        ),
    ] = Path(DEFAULT_DATA_DIR),
    gateway_addr: Annotated[str | None, typer.Option(help="Gateway listen address.")] = None,
    registry_addr: Annotated[str | None, typer.Option(help="Registry listen address.")] = None,
    coordinator_addr: Annotated[
        str | None, typer.Option(help="Coordinator listen address.")
    ] = None,
    appendfsync: Annotated[
        str | None,
        typer.Option(help="Embedded Redis AOF fsync: everysec (default) or always (no loss)."),
    ] = None,
    hooks_file: Annotated[
        Path | None,
        typer.Option(
            help="Hooks file: also start the hooks runner (default $HIVEWIRE_HOOKS_FILE)."
        ),
    ] = None,
    max_restarts: Annotated[
        int | None,
        typer.Option(
            help="Restarts of a crashed child within --restart-window before giving up on it "
            "(default $HIVEWIRE_MAX_RESTARTS or 5; 0: never restart).",
            min=0,
        ),
    ] = None,
    restart_window: Annotated[
        float | None,
        typer.Option(
            help="Seconds over which --max-restarts counts "
            "(default $HIVEWIRE_RESTART_WINDOW or 60).",
        ),
    ] = None,
    restart_delay: Annotated[
        float | None,
        typer.Option(
            help="First restart delay in seconds, doubling up to 30 "
            "(default $HIVEWIRE_RESTART_DELAY or 0.5).",
        ),
    ] = None,
    secure: Annotated[
        bool,
        typer.Option(
            help="TLS everywhere with client certificates (mTLS), from a local CA kept in "
            "DATA_DIR/tls; the CLI and SDKs run here find them (docs/security.md).",
        ),
    ] = False,
    tls_host: Annotated[
        list[str] | None,
        typer.Option(help="With --secure: another name or address for the server certificate."),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            help="Allow plaintext on addresses other than loopback.", envvar="HIVEWIRE_INSECURE"
        ),
    ] = False,
) -> None:
    """Start Redis, the registry, coordinator and gateway (and demo agents) until Ctrl-C;
    restart any of them that crashes."""
    from hivewire.cli.embedded_redis import APPENDFSYNC
    from hivewire.cli.restarts import (
        DEFAULT_MAX_RESTARTS,
        DEFAULT_RESTART_DELAY,
        DEFAULT_RESTART_WINDOW,
        RestartPolicy,
    )
    from hivewire.cli.supervisor import UpConfig
    from hivewire.cli.up import run_up

    fsync = appendfsync or env("REDIS_APPENDFSYNC", "everysec")
    if fsync not in APPENDFSYNC:
        raise typer.BadParameter(
            f"{fsync!r} is not one of {', '.join(APPENDFSYNC)}", param_hint="--appendfsync"
        )

    hooks = hooks_file or (Path(env("HOOKS_FILE", "")) if env("HOOKS_FILE", "") else None)
    if hooks is not None:
        check_hooks_file(hooks)

    restarts = RestartPolicy(
        max_restarts=int(
            _setting(max_restarts, "MAX_RESTARTS", DEFAULT_MAX_RESTARTS, "--max-restarts", int)
        ),
        window=_setting(
            restart_window, "RESTART_WINDOW", DEFAULT_RESTART_WINDOW, "--restart-window"
        ),
        delay=_setting(restart_delay, "RESTART_DELAY", DEFAULT_RESTART_DELAY, "--restart-delay"),
    )
    listen = {
        "--gateway-addr": gateway_addr or env("GATEWAY_ADDR", DEFAULT_GATEWAY_ADDR),
        "--registry-addr": registry_addr or env("REGISTRY_ADDR", DEFAULT_REGISTRY_ADDR),
        "--coordinator-addr": coordinator_addr or env("COORDINATOR_ADDR", DEFAULT_COORDINATOR_ADDR),
        "HIVEWIRE_HOOKS_ADDR": env("HOOKS_ADDR", DEFAULT_HOOKS_ADDR),
    }
    if hooks is None:
        del listen["HIVEWIRE_HOOKS_ADDR"]
    check_transport(listen, secure=secure, insecure=insecure)
    config = UpConfig(
        gateway_addr=listen["--gateway-addr"],
        registry_addr=listen["--registry-addr"],
        coordinator_addr=listen["--coordinator-addr"],
        redis_url=redis_url,
        redis_port=redis_port,
        data_dir=data_dir,
        appendfsync=fsync,
        demo=demo,
        hooks_file=hooks,
        hooks_addr=env("HOOKS_ADDR", DEFAULT_HOOKS_ADDR),
        restarts=restarts,
        secure=secure,
        tls_hosts=list(tls_host or []),
        insecure=insecure,
    )
    raise typer.Exit(asyncio.run(run_up(config)))


def check_transport(listen: dict[str, str], *, secure: bool, insecure: bool) -> None:
    """Refuse, before starting anything, plaintext on an address other machines reach (unless
    --insecure) and TLS variables that cannot work; `listen` maps option names to addresses."""
    if secure and insecure:
        raise typer.BadParameter(
            "--secure and --insecure exclude each other", param_hint="--insecure"
        )
    try:
        tls = PLAINTEXT if secure else tls_from_env(discover=False)
    except TlsError as exc:
        raise typer.BadParameter(str(exc), param_hint="HIVEWIRE_TLS_*") from None
    for option, addr in listen.items():
        try:
            check_plaintext_bind(
                addr,
                tls,
                insecure=secure or insecure,
                allow="--insecure",
                secure="pass --secure (TLS from a local CA), ",
            )
        except PlaintextBindError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from None
        # TLS from the environment alone is not enough off loopback: callers need tokens too.
        tokens = secure or env("AUTH", "").strip().lower() == "tokens"
        if not (tokens or insecure or is_loopback(addr)):
            raise typer.BadParameter(
                f"refusing to listen on {addr} without authentication: other machines can reach "
                "it; pass --secure (TLS and tokens), set HIVEWIRE_AUTH=tokens, listen on "
                "127.0.0.1, or allow it explicitly with --insecure",
                param_hint=option,
            )


def _setting(
    given: float | None,
    name: str,
    default: float,
    option: str,
    parse: Callable[[str], float] = float,
) -> float:
    """The option if given, else $HIVEWIRE_<NAME>, else `default`; refused with the option or
    variable named unless it is a whole number >= 0 (`parse=int`) or a number > 0."""
    raw = env(name, "")
    source = option if given is not None else f"HIVEWIRE_{name}={raw!r}"
    if given is None and not raw:
        return default
    try:
        value = given if given is not None else parse(raw)
    except ValueError:
        value = -1
    if not (value >= 0 if parse is int else value > 0):  # NaN fails both
        kind = "a whole number >= 0" if parse is int else "a number > 0"
        raise typer.BadParameter(f"{source} must be {kind}", param_hint=option)
    return value


def check_hooks_file(path: Path) -> None:
    """Validate a hooks file before starting anything; exit 2 with the error otherwise."""
    import os

    from hivewire.core.hooks_file import HooksFileError, load_hooks

    try:
        load_hooks(path, os.environ)
    except HooksFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_RPC_ERROR) from None


def load_agent(target: str) -> Agent:
    """The Agent named by `module:attribute` (an Agent, or a function returning one)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise typer.BadParameter("expected module:object", param_hint="TARGET")
    sys.path.insert(0, ".")
    obj = getattr(importlib.import_module(module_name), attr)
    if not isinstance(obj, Agent) and callable(obj):
        obj = obj()
    if not isinstance(obj, Agent):
        raise typer.BadParameter(f"{target} is not a hivewire.agent.Agent", param_hint="TARGET")
    return obj


def agent(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(
            help="module:object of your Agent; the demo agent if omitted; or `drain` to drain "
            "a running agent remotely."
        ),
    ] = None,
    agent_id: Annotated[
        str | None, typer.Argument(help="With `drain`: id of the agent to drain.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Agent name.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Tasks run at once.", min=1)] = None,
    capabilities: Annotated[
        str, typer.Option(help="Demo agent only: comma-separated handlers.")
    ] = "echo,wordcount,sleep",
) -> None:
    """Run an agent until SIGTERM/Ctrl-C, then drain its in-flight work.

    `hivewire agent drain ID` drains a running agent instead (an operator's control).
    It gets no new task, finishes what it holds, then exits as on SIGTERM.
    """
    if target == "drain":
        if not agent_id:
            raise typer.BadParameter("give the id of the agent to drain", param_hint="AGENT_ID")
        from hivewire.cli._queue import drain_agent

        drain_agent(ctx, agent_id)
        return
    if agent_id is not None:
        raise typer.BadParameter("only `drain` takes an agent id", param_hint="AGENT_ID")
    from hivewire.core.logs import setup_logging

    setup_logging("INFO", os.environ.get("HIVEWIRE_LOG_FORMAT") or "text")
    if target is None:
        caps = [c.strip() for c in capabilities.split(",") if c.strip()]
        the_agent = build_agent(name or "demo", caps, concurrency or 8)
    else:
        the_agent = load_agent(target)
        if name:
            the_agent.name = name
        if concurrency:
            the_agent.max_concurrency = concurrency
    serve_agent(the_agent)


def serve_agent(the_agent: Agent) -> None:
    """Run an agent until SIGTERM/Ctrl-C; a registry that refuses it exits 2 with the error."""
    try:
        run_agent(the_agent)
    except grpc.aio.AioRpcError as exc:
        typer.echo(format_rpc_error(exc), err=True)
        raise typer.Exit(EXIT_RPC_ERROR) from None
