"""Test helpers for the hooks runner: polling, events, a real signed-webhook receiver, a stack."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from hivewire.cli.readiness import wait_addr_file, wait_serving
from hivewire.core.addr_file import remove_addr_file
from hivewire.core.hooks_file import HooksConfig, parse_hooks
from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD, decode_entry, make_event
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from tests.settings import StackSettings

HOOK_TYPES = (event_pb2.EVENT_TYPE_HOOK_SUCCEEDED, event_pb2.EVENT_TYPE_HOOK_FAILED)
# Webhook secrets must be at least 32 bytes.
SECRET = "0123456789abcdef0123456789abcdef-test"
HOOKS_DOC = Path(__file__).resolve().parents[2] / "docs" / "hooks.md"

Verify = Callable[..., bool]


@cache
def documented_verify() -> Verify:
    """The `verify` function of docs/hooks.md ("Verifying the signature"), run as published."""
    section = HOOKS_DOC.read_text().split("### Verifying the signature", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/hooks.md has no Python verifier"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)
    return cast(Verify, namespace["verify"])


def config_of(text: str, env: dict[str, str] | None = None) -> HooksConfig:
    return parse_hooks(text, "test-hooks.yaml", env or {}, default_max_attempts=3)


def hook_settings(settings: StackSettings, **overrides: Any) -> StackSettings:
    """Fast retries and polling for tests; health on a free port."""
    values: dict[str, Any] = {
        "hooks_listen": "127.0.0.1:0",
        "hooks_retry_initial_backoff": 0.05,
        "hooks_retry_max_backoff": 0.2,
        "hooks_claim_idle": 1.0,
        "shutdown_grace": 1.0,
    }
    values.update(overrides)
    return replace(settings, **values)


async def emit(redis: Redis, keys: Keys, event_type: int, **fields: Any) -> str:
    """Append an event as the services do; returns its entry id."""
    event = make_event(event_type, **fields)
    entry = await redis.xadd(keys.events, {EVENT_FIELD: event.SerializeToString()})
    return entry.decode() if isinstance(entry, bytes) else str(entry)


async def events_of(redis: Redis, keys: Keys, *types: int) -> list[event_pb2.Event]:
    events = [decode_entry(i, f) for i, f in await redis.xrange(keys.events)]
    return [e for e in events if not types or e.type in types]


async def hooks_pending(redis: Redis, keys: Keys) -> int:
    """Events entries the hooks group has read and not acknowledged."""
    info = await redis.xpending(keys.events, HOOKS_GROUP)
    return int(info["pending"])


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 (port 0) checking each POST with the documented verifier.

    `clock` is the receiver's time (a test moves it to replay a delivery later).
    """

    secret: bytes
    fail_first: int = 0
    delay: float = 0.0
    clock: Callable[[], float] = time.time
    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(receiver.delay)  # a slow receiver, as the test asks
                genuine = documented_verify()(
                    receiver.secret,
                    body,
                    self.headers.get("X-Hivewire-Timestamp", ""),
                    self.headers.get("X-Hivewire-Signature", ""),
                    receiver.clock(),
                )
                with receiver.lock:
                    receiver.headers.append(dict(self.headers.items()))
                    receiver.bodies.append(body)
                    if not genuine:
                        receiver.invalid += 1
                        status = 401
                    elif receiver.fail_first > 0:
                        receiver.fail_first -= 1
                        status = 503
                    else:
                        receiver.valid.append(json.loads(body))
                        status = 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    """Serve `receiver` on a free loopback port; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def runner_env(settings: StackSettings, hooks: Path) -> dict[str, str]:
    """The environment of a `python -m hivewire_services.hooks` process for a test."""
    return {
        **os.environ,
        "HIVEWIRE_REDIS_URL": settings.redis_url,
        "HIVEWIRE_NAMESPACE": settings.namespace,
        "HIVEWIRE_HOOKS_FILE": str(hooks),
        "HIVEWIRE_HOOKS_ADDR": "127.0.0.1:0",
        "HIVEWIRE_ADDR_FILE": str(hooks.with_suffix(".addr")),
        "HIVEWIRE_HOOKS_CONCURRENCY": "2",
        "HIVEWIRE_HOOKS_CLAIM_IDLE": "1",
        "HIVEWIRE_HOOKS_POLL_INTERVAL": "0.05",
        "HIVEWIRE_SHUTDOWN_GRACE": "1",
    }


@asynccontextmanager
async def runner_process(
    settings: StackSettings, hooks: Path, log: list[bytes], extra_env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The hooks runner as a real process, serving; its output lines go to `log`."""
    remove_addr_file(hooks.with_suffix(".addr"))  # a runner killed with -9 leaves its own
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hivewire_services.hooks",
        env={**runner_env(settings, hooks), **(extra_env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    pump = asyncio.create_task(_pump(proc.stdout, log))
    try:
        await wait_serving(await wait_addr_file(hooks.with_suffix(".addr"), 60), 60)
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await asyncio.wait_for(pump, 10)


async def _pump(stream: asyncio.StreamReader, log: list[bytes]) -> None:
    while line := await stream.readline():
        log.append(line)
