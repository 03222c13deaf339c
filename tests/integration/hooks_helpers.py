"""Test helpers for the hooks runner: polling, events, a real signed-webhook receiver, a stack."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from hivewire.agent import Agent
from hivewire.core.hooks_file import HooksConfig, parse_hooks
from hivewire.v1 import event_pb2, task_pb2
from hivewire_services.common.events import EVENT_FIELD, decode_entry, make_event
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from hivewire_services.coordinator.server import CoordinatorServer
from hivewire_services.registry.server import RegistryServer
from tests.settings import StackSettings

T = TypeVar("T")
HOOK_TYPES = (event_pb2.EVENT_TYPE_HOOK_SUCCEEDED, event_pb2.EVENT_TYPE_HOOK_FAILED)


async def eventually(
    check: Callable[[], Awaitable[T]], limit: float = 60.0, interval: float = 0.05
) -> T:
    """Poll until `check` returns something truthy; fail with its last value after `limit` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met after {limit}s (last: {value!r})")
        await asyncio.sleep(interval)


def config_of(text: str, env: dict[str, str] | None = None) -> HooksConfig:
    return parse_hooks(text, "test-hooks.yaml", env or {}, default_max_attempts=3)


def hook_settings(settings: StackSettings, **overrides: Any) -> StackSettings:
    """Fast retries and polling for tests; health on a free port."""
    values: dict[str, Any] = {
        "hooks_listen": "127.0.0.1:0",
        "hooks_retry_initial_backoff": 0.05,
        "hooks_retry_max_backoff": 0.2,
        "hooks_poll_interval": 0.05,
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
                time.sleep(receiver.delay)
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


@dataclass
class Stack:
    """The real registry and coordinator on port 0, plus a helper to submit tasks."""

    settings: StackSettings
    registry: RegistryServer
    coordinator: CoordinatorServer

    async def submit(self, capability: str, n: int = 1, **kw: Any) -> list[task_pb2.Task]:
        reqs = [task_pb2.SubmitTaskRequest(capability=capability, **kw) for _ in range(n)]
        valid = [validate_task(r, self.settings) for r in reqs]
        return await self.coordinator.store.submit(valid)

    async def states(self, task_ids: list[str]) -> list[int]:
        return [(await self.coordinator.store.get(t)).state for t in task_ids]

    def agent(self, name: str, **kw: Any) -> Agent:
        return Agent(
            name,
            registry_addr=self.settings.registry_addr,
            redis_url=self.settings.redis_url,
            **kw,
        )


@asynccontextmanager
async def real_stack(settings: StackSettings) -> AsyncIterator[Stack]:
    registry = RegistryServer(settings.registry())
    port = await registry.start("127.0.0.1:0")
    settings = replace(settings, registry_addr=f"127.0.0.1:{port}")
    coordinator = CoordinatorServer(settings.coordinator())
    try:
        await coordinator.start("127.0.0.1:0")
        yield Stack(settings, registry, coordinator)
    finally:
        await coordinator.shutdown()
        await registry.shutdown()
