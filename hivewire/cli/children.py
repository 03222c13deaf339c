"""One child process slot of `hivewire up`: how to start it, its output, its pid file, its stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0
# An agent drains first (its in-flight work, within HIVEWIRE_AGENT_DRAIN_GRACE, 25 s by default):
# its grace is longer than a service's, as compose's stop_grace_period (30 s) is.
AGENT_STOP_TIMEOUT = 30.0
PUMP_TIMEOUT = 2.0

# The wait until a just-started process serves, given the wall-clock time (epoch ms) of its start.
Ready = Callable[[int], Awaitable[object]]


class StartFailed(RuntimeError):
    """A child exited, or did not serve in time, while (re)starting."""


@dataclass
class Child:
    """A named child that may run as several processes over time (one at a time): a restart
    puts a new process in the same slot."""

    name: str
    argv: list[str]
    ready: Ready
    agent: bool = False
    # Called before each start: the extra environment of that start.
    prepare: Callable[[], dict[str, str]] = dict
    process: asyncio.subprocess.Process | None = None
    pumps: set[asyncio.Task[None]] = field(default_factory=set)
    tail: deque[bytes] = field(default_factory=lambda: deque(maxlen=20))
    pid_file: Path | None = None
    # Where the process reports the address it bound (a service); removed once it is gone.
    addr_file: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def spawn(self, env: dict[str, str], write: Callable[[str], object]) -> None:
        """Start a new process (its own process group: a terminal's Ctrl-C reaches only the
        supervisor, which stops children in order), prefix its output, write its pid file."""
        self.forget()  # a killed process leaves its files behind
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
            process_group=0,
        )
        pump = asyncio.create_task(self._pump(self.process, write), name=f"pump-{self.name}")
        self.pumps.add(pump)
        pump.add_done_callback(self.pumps.discard)
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n")

    async def _pump(
        self, process: asyncio.subprocess.Process, write: Callable[[str], object]
    ) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            self.tail.append(line)
            write(f"[{self.name}] {line.decode(errors='replace').rstrip()}\n")

    async def output_done(self) -> None:
        """Until the output of every process of this slot is read (bounded)."""
        if self.pumps:
            _, late = await asyncio.wait(set(self.pumps), timeout=PUMP_TIMEOUT)
            for pump in late:  # a grandchild still holds the pipe
                pump.cancel()

    async def kill(self) -> None:
        """SIGKILL the process (one that never became ready has nothing to drain)."""
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()

    async def terminate(self) -> None:
        """SIGTERM, wait up to the stop grace (an agent's is longer: it drains), then SIGKILL;
        then drop the pid file."""
        proc = self.process
        grace = AGENT_STOP_TIMEOUT if self.agent else STOP_TIMEOUT
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                logger.warning("%s did not stop in %ss; killing it", self.name, grace)
                await self.kill()
        self.forget()
        await self.output_done()

    def forget(self) -> None:
        """Remove the pid and address files of a process that is gone."""
        for path in (self.pid_file, self.addr_file):
            if path is not None:
                path.unlink(missing_ok=True)
