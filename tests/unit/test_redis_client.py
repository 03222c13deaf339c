"""Host lookups of our Redis clients: on a daemon thread, shared, and never holding up an exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hivewire.core import redis_client
from hivewire.core.redis_client import ResolvingConnection, connection_class, lookup


async def test_an_address_is_its_own_answer_and_localhost_is_looked_up() -> None:
    assert await lookup("127.0.0.1", 6379) == ["127.0.0.1"]
    assert "127.0.0.1" in await lookup("localhost", 6379)


async def test_concurrent_lookups_of_a_host_share_one_daemon_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []

    def slow_addresses(host: str, port: int) -> list[str]:
        threads.append(threading.current_thread())
        time.sleep(0.2)  # a slow DNS server
        return ["127.0.0.1"]

    monkeypatch.setattr(redis_client, "_addresses", slow_addresses)
    got = await asyncio.gather(*(lookup("cache.example", 6379) for _ in range(5)))
    assert got == [["127.0.0.1"]] * 5
    assert len(threads) == 1 and threads[0].daemon


def test_only_tcp_urls_resolve_their_host_name() -> None:
    assert connection_class("redis://cache:6379/0") == {"connection_class": ResolvingConnection}
    assert "connection_class" in connection_class("rediss://cache:6379/0")
    assert connection_class("unix:///run/redis.sock") == {}


# A client whose connect times out while the lookup is still stuck (a DNS server that never
# answers): the process must end with its loop, quietly.
STUCK_LOOKUP = textwrap.dedent(
    """
    import socket, time, uvloop
    from hivewire.core import redis_client
    from hivewire_services.common.redis import create_redis

    def never_answers(*args, **kwargs):
        time.sleep(60)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    redis_client.socket.getaddrinfo = never_answers

    async def main():
        redis = create_redis("redis://cache.example:6379/0", retries=0)
        try:
            await redis.ping()
        except Exception as exc:
            print("ping failed:", type(exc).__name__, flush=True)
        await redis.aclose()

    uvloop.run(main())
    print("loop ended", flush=True)
    """
)


def test_a_stuck_lookup_neither_holds_the_exit_nor_logs() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", STUCK_LOOKUP], capture_output=True, text=True, timeout=50
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "ping failed: TimeoutError" in done.stdout and "loop ended" in done.stdout
    assert "never retrieved" not in done.stderr and "Traceback" not in done.stderr
    assert elapsed < 20  # the connect timeout (2 s) and an interpreter's start, not the 60 s
