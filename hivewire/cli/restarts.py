"""When `hivewire up` restarts a child that exited and when it gives up on one (the policy, pure),
and the loop that does it."""

from __future__ import annotations

import asyncio
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hivewire.cli.children import Child, StartFailed
from hivewire.core.backoff import backoff_delay

DEFAULT_MAX_RESTARTS = 5
DEFAULT_RESTART_WINDOW = 60.0
DEFAULT_RESTART_DELAY = 0.5
RESTART_DELAY_CAP = 30.0


@dataclass(frozen=True)
class RestartPolicy:
    """At most `max_restarts` restarts of a child within `window` seconds; the n-th restart in
    the window waits the backoff delay of n failures (from `delay`, doubling up to the cap)."""

    max_restarts: int = DEFAULT_MAX_RESTARTS
    window: float = DEFAULT_RESTART_WINDOW
    delay: float = DEFAULT_RESTART_DELAY

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be 0 or more")
        if self.window <= 0 or self.delay <= 0:
            raise ValueError("the restart window and delay must be positive")

    @property
    def cap(self) -> float:
        return max(RESTART_DELAY_CAP, self.delay)

    def describe(self) -> str:
        """'5 in 60s': the limit, as log lines and the README say it."""
        return f"{self.max_restarts} in {self.window:g}s"


@dataclass(frozen=True)
class Verdict:
    """What to do after a crash: restart number `restart` after `delay` seconds, or give up
    (`crashes` is how many crashes the window holds, this one included)."""

    crashes: int
    restart: int
    delay: float
    give_up: bool


class CrashHistory:
    """The crash times of one child inside the policy's window."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self._times: deque[float] = deque()

    def crashed(self, now: float) -> Verdict:
        """Record a crash at `now` (monotonic seconds) and decide what follows."""
        self._times.append(now)
        while self._times[0] <= now - self.policy.window:
            self._times.popleft()
        crashes = len(self._times)
        if crashes > self.policy.max_restarts:
            return Verdict(crashes, 0, 0.0, give_up=True)
        delay = backoff_delay(crashes, self.policy.delay, self.policy.cap)
        return Verdict(crashes, crashes, delay, give_up=False)


def describe_exit(returncode: int) -> str:
    """'-9 (signal SIGKILL)' for a child killed by a signal, else the exit status."""
    if returncode >= 0:
        return str(returncode)
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return str(returncode)
    return f"{returncode} (signal {name})"


async def until_stopping(aw: Awaitable[object], stopping: asyncio.Event) -> bool:
    """Wait for `aw`; False (and `aw` cancelled) if `stopping` is set first."""
    work = asyncio.ensure_future(aw)
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({work, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        work.cancel()
        stopped.cancel()
    return work.done() and not work.cancelled() and not stopping.is_set()


async def keep_running(
    child: Child,
    launch: Callable[[Child], Awaitable[bool]],
    policy: RestartPolicy,
    stopping: asyncio.Event,
    say: Callable[[str], None],
) -> str:
    """Restart `child` (with `launch`: True once it serves, False if stopping began, StartFailed)
    each time its process exits, after the policy's delay. Returns "" once stopping begins, or
    why it gave up: "exited with 2; it crashed 6 times in 60s"."""
    history = CrashHistory(policy)
    loop = asyncio.get_running_loop()
    while True:
        assert child.process is not None
        if not await until_stopping(child.process.wait(), stopping):
            return ""
        child.forget()
        reason = f"exited with {describe_exit(child.process.returncode or 0)}"
        while reason:
            verdict = history.crashed(loop.time())
            if verdict.give_up:
                times = "time" if verdict.crashes == 1 else "times"
                return f"{reason}; it crashed {verdict.crashes} {times} in {policy.window:g}s"
            say(
                f"{child.name} {reason}; restarting in {verdict.delay:.1f}s "
                f"(restart {verdict.restart} of {policy.describe()})"
            )
            if not await until_stopping(asyncio.sleep(verdict.delay), stopping):
                return ""
            try:
                if not await launch(child):
                    return ""
            except StartFailed as exc:
                reason = str(exc)
                continue
            except OSError as exc:  # could not even spawn it (fork failed, ...)
                reason = f"could not be started ({exc})"
                continue
            reason = ""
            say(f"{child.name} is back (pid {child.pid})")
