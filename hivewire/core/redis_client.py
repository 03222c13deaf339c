"""What every Redis client of ours shares (SDK and services): host lookups that never hold up an
exit, and clients of their own for long blocking reads.

A TCP connection's host name is looked up on a daemon thread, not in the event loop's resolver
(uvloop's thread pool, asyncio's default executor): a loop waits for those when it closes, so a
lookup still stuck on a slow DNS server (an unresolvable host in a container) kept a process
alive for tens of seconds after it had stopped, and the abandoned lookup then logged "Future
exception was never retrieved" with its gaierror. An abandoned daemon-thread lookup ends with
the process, and its answer, if it comes, is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection

__all__ = [
    "BLOCK_MARGIN_S",
    "ResolvingConnection",
    "ResolvingSSLConnection",
    "blocking_reads",
    "close_quietly",
    "connection_class",
    "lookup",
]

# How much longer than its BLOCK a blocking read may take before its socket times out.
BLOCK_MARGIN_S = 5.0

_Lookups = dict[tuple[str, int], "asyncio.Future[list[str]]"]
_in_flight: dict[asyncio.AbstractEventLoop, _Lookups] = {}


def _addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # in order, once each


def _settle(
    fut: asyncio.Future[list[str]], result: list[str] | None, exc: BaseException | None
) -> None:
    if fut.done():
        return  # nobody waits any more
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result or [])


async def lookup(host: str, port: int) -> list[str]:
    """The addresses of `host` (an address is its own answer), looked up on a daemon thread;
    concurrent lookups of one host share the thread. Raises socket.gaierror."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    lookups = _in_flight.setdefault(loop, {})
    key = (host, port)
    fut = lookups.get(key)
    if fut is None:
        fut = loop.create_future()
        lookups[key] = fut

        def forget(done: asyncio.Future[list[str]]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved here: every waiter may have given up
            lookups.pop(key, None)
            if not lookups:
                _in_flight.pop(loop, None)

        fut.add_done_callback(forget)

        def work(done: asyncio.Future[list[str]] = fut) -> None:
            result: list[str] | None = None
            error: BaseException | None = None
            try:
                result = _addresses(host, port)
            except Exception as exc:
                error = exc
            # A closed loop (RuntimeError) means the process is on its way out: drop it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, done, result, error)

        threading.Thread(target=work, name=f"lookup {host}", daemon=True).start()
    # shield: a caller's timeout or cancel leaves the shared lookup to the others.
    return list(await asyncio.shield(fut))


class _LookedUp:
    """Connects to each address of the host in turn, looked up with `lookup`."""

    host: str
    port: int
    socket_connect_timeout: float | None
    _address: str | None = None

    async def _connect(self) -> None:
        error: BaseException | None = None
        async with asyncio.timeout(self.socket_connect_timeout):
            addresses = await lookup(self.host, self.port)
        for address in addresses:
            self._address = address
            try:
                await super()._connect()  # type: ignore[misc]
            except (TimeoutError, OSError) as exc:
                error = exc
                continue
            finally:
                self._address = None
            return
        raise error or OSError(f"{self.host} has no address")

    def _connection_arguments(self) -> Mapping[str, Any]:
        args = dict(super()._connection_arguments())  # type: ignore[misc]
        if self._address is not None:
            if args.get("ssl") is not None:
                args["server_hostname"] = self.host  # certificates name the host, not the address
            args["host"] = self._address
        return args


class ResolvingConnection(_LookedUp, Connection):
    """redis:// with the host looked up on a daemon thread."""


class ResolvingSSLConnection(_LookedUp, SSLConnection):
    """rediss:// with the host looked up on a daemon thread."""


def connection_class(url: str) -> dict[str, Any]:
    """`connection_class=` for a client of `url` (none for a unix socket)."""
    scheme = urlsplit(url).scheme
    if scheme == "redis":
        return {"connection_class": ResolvingConnection}
    if scheme == "rediss":
        return {"connection_class": ResolvingSSLConnection}
    return {}


def blocking_reads(redis: aioredis.Redis, longest_block: float) -> aioredis.Redis:
    """A one-connection client to `redis`'s server for blocking reads (XREAD, XREADGROUP) of up
    to `longest_block` seconds: its socket timeout waits that long plus a margin, where the
    shared client's would cut a long BLOCK short. Close it with `close_quietly`."""
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": longest_block + BLOCK_MARGIN_S}
    reads = aioredis.BlockingConnectionPool(
        connection_class=pool.connection_class, max_connections=1, timeout=None, **kwargs
    )
    return aioredis.Redis.from_pool(reads)


async def close_quietly(redis: aioredis.Redis) -> None:
    """Close a client, even from a task being cancelled (its connection is never left open)."""
    await asyncio.shield(redis.aclose())
