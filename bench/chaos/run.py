"""One chaos run: start the stack, submit under faults, drain, stop, then check the record."""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.checker import Verdict, check
from bench.chaos.driver import Driver
from bench.chaos.faults import Fault, FaultInjector
from bench.chaos.record import load_record, read_ledger
from bench.chaos.stack import NAMESPACE, ChaosStack
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import REDIS_UNAVAILABLE, Redis, create_redis

TERMINAL_STATE_NAMES = ("4", "5", "6", "7")  # SUCCEEDED, FAILED, CANCELLED, TIMED_OUT


@dataclass
class ChaosConfig:
    tasks: int = 20_000
    agents: int = 3
    coordinators: int = 1
    concurrency: int = 16
    kill_every: tuple[float, float] = (1.5, 4.0)
    submit_rate: float = 0.0
    max_outstanding: int = 2000
    """Backpressure: at most this many submitted tasks not yet ended (0: no bound)."""
    batch: int = 200
    work_ms: int = 5
    appendfsync: str = "always"
    redis_restart_at: float = 0.3
    """Restart Redis once this fraction of the tasks has ended."""
    faults_until: float = 0.95
    """Stop injecting faults once every task is submitted, this fraction has ended and every
    kind of fault has been injected."""
    drain_timeout: float = 300.0
    seed: int | None = None
    faults: bool = True
    kill_registry: bool = False
    """Also kill -9 the registry among the random victims."""
    """False: the same run without any fault, for comparison."""
    workdir: Path | None = None
    keep: bool = False


@dataclass
class ChaosResult:
    config: ChaosConfig
    verdict: Verdict
    faults: list[Fault]
    wall_seconds: float
    retried_batches: int
    workdir: Path
    seed: int
    notes: list[str] = field(default_factory=list)


class Progress:
    """Counts ended tasks from the per-state indexes (tolerating Redis being down)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.ended = 0

    async def poll(self) -> int:
        with contextlib.suppress(*REDIS_UNAVAILABLE):
            async with self.redis.pipeline(transaction=False) as pipe:
                for state in TERMINAL_STATE_NAMES:
                    pipe.zcard(self.keys.tasks_by_state(state))
                self.ended = sum(int(n) for n in await pipe.execute())
        return self.ended


async def wait_agents(redis: Redis, keys: Keys, n: int, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while int(await redis.zcard(keys.leases)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} agents not registered after {limit}s")
        await asyncio.sleep(0.1)


async def run_chaos(cfg: ChaosConfig, log: Callable[[str], None] = lambda _: None) -> ChaosResult:
    seed = cfg.seed if cfg.seed is not None else random.randrange(1 << 30)
    workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="hivewire-chaos-"))
    stack = ChaosStack(
        workdir,
        agents=cfg.agents,
        concurrency=cfg.concurrency,
        appendfsync=cfg.appendfsync,
        coordinators=cfg.coordinators,
    )
    keys = Keys(NAMESPACE)
    try:
        await stack.start_all()
        redis = create_redis(stack.redis.url)
        try:
            await wait_agents(redis, keys, cfg.agents)
            log(f"[chaos] stack up in {workdir}; seed {seed}; submitting {cfg.tasks} tasks")
            t0 = time.monotonic()
            driver, injector = await _chaos_phase(cfg, stack, redis, keys, seed, workdir, log)
            await _drain(cfg, Progress(redis, keys), len(driver.accepted), log)
            wall = time.monotonic() - t0
            await stack.stop_all()
            log("[chaos] services stopped; checking the record")
            accepted = read_ledger(workdir / "accepted.jsonl")
            verdict = check(await load_record(redis, keys, accepted))
        finally:
            await redis.aclose()
    finally:
        stack.close()
    result = ChaosResult(cfg, verdict, injector.faults, wall, driver.retried_batches, workdir, seed)
    if not cfg.keep and verdict.ok:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


async def _chaos_phase(
    cfg: ChaosConfig,
    stack: ChaosStack,
    redis: Redis,
    keys: Keys,
    seed: int,
    workdir: Path,
    log: Callable[[str], None],
) -> tuple[Driver, FaultInjector]:
    """Submit everything while faults fly; return once submission is done and the faults
    have stopped (most tasks ended)."""
    progress = Progress(redis, keys)
    driver = Driver(
        [stack.addrs[name] for name in stack.coordinators],
        workdir / "accepted.jsonl",
        uuid.uuid4().hex[:8],
        cfg.tasks,
        batch=cfg.batch,
        rate=cfg.submit_rate,
        work_ms=cfg.work_ms,
        max_outstanding=cfg.max_outstanding,
        ended=lambda: progress.ended,
    )
    injector = FaultInjector(
        stack, random.Random(seed), cfg.kill_every, kill_registry=cfg.kill_registry, log=log
    )
    stop = asyncio.Event()
    faults = asyncio.create_task(
        injector.run(stop, lambda: progress.ended >= cfg.redis_restart_at * cfg.tasks)
        if cfg.faults
        else stop.wait()
    )
    submitting = asyncio.create_task(driver.run())
    try:
        while True:
            await asyncio.sleep(0.2)
            if faults.done():
                faults.result()  # the injector failed: raise its error
            if submitting.done():
                submitting.result()
            ended = await progress.poll()
            if (
                submitting.done()
                and ended >= cfg.faults_until * len(driver.accepted)
                and (injector.covered or not cfg.faults)
            ):
                break
        stop.set()
        await faults
    finally:
        for task in (faults, submitting):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    log(f"[chaos] {len(driver.accepted)} tasks accepted; faults stopped")
    return driver, injector


async def _drain(
    cfg: ChaosConfig, progress: Progress, total: int, log: Callable[[str], None]
) -> None:
    deadline = time.monotonic() + cfg.drain_timeout
    while await progress.poll() < total:
        if time.monotonic() > deadline:
            log(f"[chaos] drain timed out with {progress.ended}/{total} ended")
            return
        await asyncio.sleep(0.25)
