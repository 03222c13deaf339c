"""`hivewire up` until a signal: the supervisor, the ready banner, the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from hivewire.cli.supervisor import Supervisor, UpConfig
from hivewire.core.client_config import config_path
from hivewire.core.defaults import DEFAULT_GATEWAY_ADDR
from hivewire.core.redis_url import redact_url
from hivewire.core.redis_users import PASSWORDS_FILE


def banner(config: UpConfig, redis_url: str, gateway_addr: str) -> str:
    """What runs where; `redis_url` is shown with its password hidden."""
    data_dir = config.data_dir.resolve()
    tls_dir = data_dir / "tls"
    lines = [
        "",
        "hivewire is ready",
        f"  gateway   {gateway_addr}",
        f"  redis     {redact_url(redis_url)}",
        "",
        "try:",
        "  hivewire agents",
        '  hivewire submit echo --payload \'{"hello": "world"}\' --wait --json',
        '  hivewire submit wordcount --payload \'{"text": "to be or not to be"}\' --wait',
        "  hivewire watch",
        "",
        "workflows (custom commands in ./commands):",
        "  hivewire commands",
        "  hivewire run analyze-text -p text='to be or not to be that is the question' --wait",
        "  hivewire run diamond --wait --json",
        "  hivewire workflows",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    if not config.demo:
        lines.insert(6, "  hivewire agent            # start a demo agent (echo, wordcount, sleep)")
    if config.hooks_file is not None:
        lines.insert(4, f"  hooks     {config.hooks_file}")
    if config.secure:
        lines.insert(
            4, f"  auth      tokens required; the admin token is in {config_path(data_dir)}"
        )
        lines.insert(4, f"  tls       client certificates required; CA {tls_dir / 'ca.pem'}")
    if config.redis_url is None:
        passwords = config.data_dir / PASSWORDS_FILE
        lines.insert(4, f"            (each service its own user; passwords in {passwords})")
    if gateway_addr != DEFAULT_GATEWAY_ADDR or config.secure:
        lines.append(
            f"(the CLI and SDKs find this stack in {config_path(data_dir)} when run here or with "
            f"HIVEWIRE_DATA_DIR={data_dir}; elsewhere set HIVEWIRE_GATEWAY_ADDR={gateway_addr}"
            + (" and HIVEWIRE_TLS_CA, _CERT, _KEY: docs/security.md)\n" if config.secure else ")\n")
        )
    return "\n".join(lines) + "\n"


async def run_up(config: UpConfig, write: Callable[[str], object] | None = None) -> int:
    """Run until SIGINT/SIGTERM (exit 0), or until the stack fails to start or Redis is given
    up on (exit 1). Children that crash meanwhile are restarted (see Supervisor)."""
    sup = Supervisor(config, write)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        starting = asyncio.ensure_future(sup.start())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        elif starting.exception() is not None:
            sup.say(f"failed to start: {starting.exception()}")
            code = 1
        else:
            sup.write(banner(config, sup.admin_url, sup.addrs["gateway"]))
            fatal = asyncio.ensure_future(sup.fatal.wait())
            await asyncio.wait({fatal, stopped}, return_when=asyncio.FIRST_COMPLETED)
            fatal.cancel()
            code = 0 if stop.is_set() else 1
        stopped.cancel()
    finally:
        sup.say("stopping")
        await sup.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return code
