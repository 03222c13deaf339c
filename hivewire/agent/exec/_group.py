"""A command in its own process group (its own session): started, watched, signalled whole.

asyncio's Process.wait() returns only once every pipe is closed, which a background
grandchild can hold open for ever; the protocol here says when the command itself exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import cast

PIPE = asyncio.subprocess.PIPE


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class GroupedCommand:
    """A started command: its pipes, its exit, and signals to its whole process group."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _ExitAwareProtocol):
        self._transport = transport
        self._exited = protocol.exited
        process = asyncio.subprocess.Process(transport, protocol, asyncio.get_running_loop())
        self.pid = process.pid
        assert process.stdin and process.stdout and process.stderr
        self.stdin: asyncio.StreamWriter = process.stdin
        self.stdout: asyncio.StreamReader = process.stdout
        self.stderr: asyncio.StreamReader = process.stderr

    @property
    def returncode(self) -> int | None:
        """Exit code, or -N when killed by signal N; None while it runs."""
        return self._transport.get_returncode()

    async def exited(self) -> int:
        """Wait until the command itself exits (its pipes may stay open) and give its code."""
        await self._exited.wait()
        return cast(int, self.returncode)

    def signal_group(self, sig: signal.Signals) -> bool:
        """Send `sig` to every process of the group; False when none is left."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    async def stop_group(
        self, grace: float, settled: Callable[[], Awaitable[object]] | None = None
    ) -> bool:
        """SIGTERM to the group, up to `grace` seconds for `settled` (default: the command's
        exit), then SIGKILL to the group: always, even when this is cancelled meanwhile.
        False when the group was already empty."""
        try:
            if not self.signal_group(signal.SIGTERM):
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((settled or self.exited)(), grace)
            return True
        finally:
            self.signal_group(signal.SIGKILL)

    def kill_group(self) -> None:
        """SIGKILL to the group now (when the agent itself is going away)."""
        self.signal_group(signal.SIGKILL)

    def close(self) -> None:
        """Release the pipes and the transport."""
        self._transport.close()


async def start_grouped(
    argv: Sequence[str], *, cwd: str, env: Mapping[str, str], limit: int
) -> GroupedCommand:
    """Start `argv` in a new session (so a new process group) with three pipes; `limit` bounds
    each output pipe's buffer here (reading pauses past twice that)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitAwareProtocol(limit, loop),
        *argv,
        stdin=PIPE,
        stdout=PIPE,
        stderr=PIPE,
        cwd=cwd,
        env=dict(env),
        start_new_session=True,
    )
    return GroupedCommand(transport, protocol)
