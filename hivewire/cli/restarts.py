"""When `hivewire up` restarts a child that exited, and when it gives up on one (pure logic)."""

from __future__ import annotations

import signal
from collections import deque
from dataclasses import dataclass

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
