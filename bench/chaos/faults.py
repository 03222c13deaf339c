"""The fault injector: kill -9 a random agent or coordinator every few seconds and start
it again shortly after, or freeze an agent (SIGSTOP) past its lease and let it go on (SIGCONT)
so its late results meet the fence; once, kill -9 Redis and restart it from its AOF."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.chaos.stack import ChaosStack

REDIS_DOWN_SECONDS = 2.0
# Longer than the chaos stack's agent lease (3 s) plus a sweep and a reclaim pass.
PAUSE_SECONDS = 5.0
PAUSE = "pause"


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds since the injector started."""
    action: str
    target: str


@dataclass
class FaultInjector:
    stack: ChaosStack
    rng: random.Random
    kill_every: tuple[float, float]
    restart_after: tuple[float, float] = (0.2, 1.0)
    kill_registry: bool = False
    log: Callable[[str], None] = lambda _: None
    faults: list[Fault] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    def _note(self, action: str, target: str) -> None:
        fault = Fault(round(time.monotonic() - self._t0, 2), action, target)
        self.faults.append(fault)
        self.log(f"[chaos] {fault.at:7.2f}s {action} {target}")

    def __post_init__(self) -> None:
        self.victims = [*self.stack.agents, *self.stack.coordinators]
        # The first faults are an agent kill, a coordinator kill and an agent pause (and a
        # registry kill when it is a victim), so every run has each; then a random victim or a
        # pause. Redis is restarted once besides.
        self.first = [
            self.rng.choice(self.stack.agents),
            self.rng.choice(self.stack.coordinators),
            PAUSE,
        ]
        if self.kill_registry:
            self.victims.append("registry")
            self.first.insert(1, "registry")
        self.redis_done = False

    @property
    def covered(self) -> bool:
        """Every kind of fault has been injected at least once."""
        return not self.first and self.redis_done

    async def run(self, stop: asyncio.Event, restart_redis_now: Callable[[], bool]) -> None:
        """Inject faults until `stop` is set; restart Redis once when `restart_redis_now()`
        first says so (or once the other first faults are done)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(*self.kill_every))
            if stop.is_set():
                return
            if not self.redis_done and (restart_redis_now() or not self.first):
                await self.restart_redis()
                self.redis_done = True
                continue
            victim = self.first.pop(0) if self.first else self.rng.choice([*self.victims, PAUSE])
            if victim == PAUSE:
                await self.pause(self.rng.choice(self.stack.agents))
            else:
                await self.kill_and_restart(victim)

    async def kill_and_restart(self, name: str) -> None:
        self.stack.kill(name)
        self._note("kill -9", name)
        await asyncio.sleep(self.rng.uniform(*self.restart_after))
        self.stack.start(name)
        self._note("start", name)

    async def pause(self, name: str) -> None:
        """SIGSTOP past the lease: its work is reclaimed; after SIGCONT its results are stale."""
        pid = self.stack.procs[name].pid
        os.kill(pid, signal.SIGSTOP)
        self._note("SIGSTOP", name)
        try:
            await asyncio.sleep(PAUSE_SECONDS)
        finally:
            os.kill(pid, signal.SIGCONT)
            self._note("SIGCONT", name)

    async def restart_redis(self) -> None:
        self.stack.kill("redis")
        self._note("kill -9", "redis")
        await asyncio.sleep(REDIS_DOWN_SECONDS)
        await asyncio.to_thread(self.stack.start, "redis")
        self._note("start", "redis")
