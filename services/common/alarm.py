"""The wait of every timed service loop: sleep until the next due time, woken early by news.

A loop that works on due times (leases, deadlines, retries) asks Redis after each pass when
its next item is due and sleeps until then instead of scanning at a fixed interval; whoever
creates something that may be due earlier (a new lease, a retry, a submitted deadline) tells
the alarm, which shortens the sleep. `longest` bounds every sleep: the rare safety pass that
catches what another process created and could not announce here (it died meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from hivewire.core.clock import now_ms


class Alarm:
    """When a loop should next run, as an epoch-ms due time; `wait()` sleeps until then.

    `at(ms)` asks for a run at `ms` (or earlier if another due time is sooner), `now()` for a
    run at once. A due time given while the loop is busy is kept for its next `wait()`, so no
    announcement falls between a pass and the sleep that follows it. The first `wait()`
    returns at once: a loop makes its first pass when it starts.
    """

    def __init__(self, longest: float) -> None:
        if longest <= 0:
            raise ValueError("an alarm needs a positive longest sleep")
        self.longest = longest
        self._due = -math.inf
        self._changed = asyncio.Event()
        self.wakeups = 0

    @property
    def due_ms(self) -> float:
        """The earliest due time asked for since the last `wait()` returned (inf: none)."""
        return self._due

    def at(self, due_ms: float | None) -> None:
        """Run the loop at `due_ms` (epoch ms) unless it is to run earlier; None is ignored."""
        if due_ms is not None and due_ms < self._due:
            self._due = due_ms
            self._changed.set()

    def now(self) -> None:
        """Run the loop as soon as it waits (or at once if it is waiting)."""
        self.at(-math.inf)

    async def wait(self) -> None:
        """Sleep until the earliest due time asked for, at most `longest` seconds; then clear
        it (the pass that follows asks for the next one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.longest
        while True:
            delay = min(deadline - loop.time(), (self._due - now_ms()) / 1000)
            if delay <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), delay)
        self._due = math.inf
        self.wakeups += 1


def due_ms(raw: object) -> int | None:
    """A due time a script returned (a sorted-set score; -1 or nil for none) as epoch ms."""
    if raw is None or raw == b"":
        return None
    value = float(raw if isinstance(raw, int | float | str | bytes) else str(raw))
    return None if value < 0 else int(value)


class OutageHold:
    """No lease is judged until `grace` seconds after Redis was last lost and came back: agents
    could not heartbeat meanwhile, and each gets a heartbeat to renew first.

    A loop sees an outage itself (`recovered()`: a failed pass, then Redis answered) or hears
    of it from the process's Redis probe (`probe_recovered_ms`, which catches an outage the
    loop slept through).
    """

    def __init__(self, grace: float, probe_recovered_ms: Callable[[], int] | None = None) -> None:
        self.grace_ms = int(grace * 1000)
        self._probe = probe_recovered_ms or (lambda: 0)
        self._seen_ms = 0

    def recovered(self) -> None:
        """Redis answers again after this loop failed to reach it."""
        self._seen_ms = now_ms()

    def until_ms(self) -> int:
        """No lease may be judged before this (epoch ms)."""
        back = max(self._seen_ms, self._probe())
        return back + self.grace_ms if back else 0
