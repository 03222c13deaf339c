"""A command in its own process group (its own session): started, watched, signalled whole.

Started with subprocess.Popen (vfork, whatever the event loop: uvloop would fork() the whole
agent, gRPC threads and all) and watched through a pidfd, so the command's own exit is seen
even while a grandchild it left behind holds its pipes open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import IO


def _spawn(
    argv: Sequence[str], cwd: str, env: Mapping[str, str], stdin: bytes
) -> subprocess.Popen[bytes]:
    # stdin from an unlinked temporary file: the whole payload, then EOF, nothing to feed
    # (nor to block on) whether or not the command reads it.
    with tempfile.TemporaryFile() as payload:
        payload.write(stdin)
        payload.seek(0)
        return subprocess.Popen(
            argv,
            stdin=payload,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )


async def _connect_pipe(reader: asyncio.StreamReader, pipe: IO[bytes]) -> asyncio.BaseTransport:
    """Feed `reader` from `pipe`; the transport owns (and closes) the pipe from now on."""
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, pipe)
    return transport


class GroupedCommand:
    """A started command: its output streams, its exit, and signals to its whole group."""

    def __init__(self, process: subprocess.Popen[bytes], limit: int) -> None:
        self._process = process
        self.pid = process.pid
        self.stdout = asyncio.StreamReader(limit=limit)
        self.stderr = asyncio.StreamReader(limit=limit)
        self._exited = asyncio.Event()
        self._transports: list[asyncio.BaseTransport] = []
        self._pidfd = -1
        self._waiter: asyncio.Future[int] | None = None

    async def _connect(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): a thread waits
            self._waiter = asyncio.ensure_future(asyncio.to_thread(self._process.wait))
            self._waiter.add_done_callback(lambda _: self._exited.set())
        else:
            asyncio.get_running_loop().add_reader(self._pidfd, self._reap)
        pipes = [(self.stdout, self._process.stdout), (self.stderr, self._process.stderr)]
        try:
            while pipes:
                reader, pipe = pipes[0]
                assert pipe is not None
                self._transports.append(await _connect_pipe(reader, pipe))
                pipes.pop(0)
        finally:
            for _, pipe in pipes:  # not handed to a transport (connecting failed)
                if pipe is not None:
                    pipe.close()

    def _reap(self) -> None:
        """The pidfd is readable: the command exited; collect its status."""
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self._process.wait()
        self._exited.set()

    @property
    def returncode(self) -> int | None:
        """Exit code, or -N when killed by signal N; None while it runs."""
        return self._process.returncode if self._exited.is_set() else None

    async def exited(self) -> int:
        """Wait until the command itself exits (its pipes may stay open) and give its code."""
        await self._exited.wait()
        return self._process.returncode

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
        """Close the pipes; the command, if it still runs, is reaped when it exits."""
        for transport in self._transports:
            transport.close()


async def start_grouped(
    argv: Sequence[str], *, cwd: str, env: Mapping[str, str], stdin: bytes, limit: int
) -> GroupedCommand:
    """Start `argv` in a new session (so a new process group) with `stdin` as its input;
    `limit` bounds each output stream's buffer (reading the pipe pauses past twice that)."""
    command = GroupedCommand(_spawn(argv, cwd, env, stdin), limit)
    try:
        await command._connect()
    except BaseException:
        command.kill_group()
        command.close()
        raise
    return command
