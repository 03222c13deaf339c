"""Test helpers for the hooks runner: polling, events, a real signed-webhook receiver, a stack."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hivewire.core.hooks_file import HooksConfig, parse_hooks
from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD, decode_entry, make_event
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from tests.settings import StackSettings

HOOK_TYPES = (event_pb2.EVENT_TYPE_HOOK_SUCCEEDED, event_pb2.EVENT_TYPE_HOOK_FAILED)


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
    """A real HTTP server on 127.0.0.1 (port 0) that checks the HMAC signature of each POST."""

    secret: bytes
    fail_first: int = 0
    delay: float = 0.0
    valid: list[dict[str, Any]] = field(default_factory=list)
    invalid: int = 0
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(receiver.delay)  # a slow receiver, as the test asks
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Hivewire-Signature", "")
                with receiver.lock:
                    receiver.headers.append(dict(self.headers.items()))
                    if not hmac.compare_digest(expected, given):
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
