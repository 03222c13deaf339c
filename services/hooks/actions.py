"""Running one hook action: a command (argv, JSON on stdin) or a signed webhook POST."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from hivewire.core.event_names import event_name
from hivewire.core.hooks_file import CommandAction, Hook, WebhookAction
from hivewire_services.hooks.payload import (
    Delivery,
    body,
    environment,
    inherited,
    signature_headers,
)

logger = logging.getLogger(__name__)

# Output a hook may print that we keep (the tail, for the outcome message); the rest is read
# and dropped so a chatty hook can neither block on a full pipe nor fill our memory.
OUTPUT_TAIL_BYTES = 2048
KILL_WAIT_S = 5.0
RESPONSE_START_BYTES = 200


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


class ActionRunner:
    """Runs hook actions; one shared HTTP client (closed by `aclose`).

    Commands inherit only the allowlisted part of `base_env` (payload.inherited), never the
    runner's secrets, plus their own `env` and the event's HIVEWIRE_* variables.
    """

    def __init__(self, base_env: Mapping[str, str]) -> None:
        self._base_env = inherited(base_env)
        self._http = httpx.AsyncClient(follow_redirects=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, hook: Hook, delivery: Delivery) -> Outcome:
        """Run the action once; never raises except on cancellation."""
        try:
            if isinstance(hook.action, CommandAction):
                return await self._command(hook.action, delivery)
            return await self._webhook(hook.action, delivery)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("hook %s failed", hook.name, exc_info=True)
            return Outcome(False, f"{type(exc).__name__}: {exc}")

    async def _command(self, action: CommandAction, delivery: Delivery) -> Outcome:
        env = {**self._base_env, **action.env, **environment(delivery)}
        proc = await asyncio.create_subprocess_exec(
            *action.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=action.cwd,
            start_new_session=True,  # its own process group: a timeout kills its children too
        )
        assert proc.stdin is not None and proc.stdout is not None
        tail = bytearray()
        reader = asyncio.ensure_future(_read_tail(proc.stdout, tail))
        try:
            async with asyncio.timeout(action.timeout):
                # A command may exit without reading stdin (uvloop then raises RuntimeError).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                    proc.stdin.write(body(delivery))
                    await proc.stdin.drain()
                    proc.stdin.close()
                await proc.wait()
                await reader
        except TimeoutError:
            await _kill(proc, reader)
            return Outcome(False, f"timed out after {action.timeout:g}s{_tail(tail)}")
        except BaseException:
            await _kill(proc, reader)
            raise
        if proc.returncode == 0:
            return Outcome(True, "exit 0")
        return Outcome(False, f"exit status {proc.returncode}{_tail(tail)}")

    async def _webhook(self, action: WebhookAction, delivery: Delivery) -> Outcome:
        payload = body(delivery)
        headers = {
            **action.headers,
            "Content-Type": "application/json",
            "User-Agent": "hivewire-hooks",
            **signature_headers(action.secret, payload),
            "X-Hivewire-Event": event_name(delivery.event.type),
            "X-Hivewire-Delivery": delivery.delivery_id,
            "X-Hivewire-Hook": delivery.hook,
        }
        try:
            async with asyncio.timeout(action.timeout):  # httpx's timeout is per phase
                request = self._http.build_request(
                    "POST", action.url, content=payload, headers=headers, timeout=action.timeout
                )
                resp = await self._http.send(request, stream=True)
                try:
                    status, text = resp.status_code, await _read_start(resp)
                finally:
                    await resp.aclose()
        except TimeoutError:
            return Outcome(False, f"timed out after {action.timeout:g}s")
        if 200 <= status < 300:
            return Outcome(True, f"HTTP {status}")
        return Outcome(False, f"HTTP {status}" + (f": {text}" if text else ""))


async def _read_start(resp: httpx.Response) -> str:
    """The first bytes of a response body (the rest is never read into memory)."""
    start = bytearray()
    async for chunk in resp.aiter_raw():
        start += chunk
        if len(start) >= RESPONSE_START_BYTES:
            break
    return start[:RESPONSE_START_BYTES].decode(errors="replace").strip()


async def _read_tail(stream: asyncio.StreamReader, tail: bytearray) -> None:
    while chunk := await stream.read(65536):
        tail += chunk
        del tail[:-OUTPUT_TAIL_BYTES]


def _tail(tail: bytearray) -> str:
    text = tail.decode(errors="replace").strip()
    return f": {text[-500:]}" if text else ""


async def _kill(proc: asyncio.subprocess.Process, reader: asyncio.Future[None]) -> None:
    # The whole group: the command may have left children holding its output pipe.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_WAIT_S)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await reader
