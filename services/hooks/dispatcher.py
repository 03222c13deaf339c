"""Runs due hook deliveries with bounded concurrency; retries with capped backoff and jitter.

A failing or slow hook holds one of `hooks_concurrency` slots at most for its timeout; its
retries wait in Redis (the due set), never in this process, so nothing upstream waits for it.
"""

from __future__ import annotations

import asyncio
import logging

from hivewire.core.backoff import backoff_delay
from hivewire.core.clock import now_ms
from hivewire.core.hooks_file import HooksConfig
from hivewire_services.common.alarm import Alarm
from hivewire_services.common.loops import Backoff
from hivewire_services.hooks.actions import ActionRunner, Outcome
from hivewire_services.hooks.config import HooksSettings
from hivewire_services.hooks.deliveries import DeliveryStore
from hivewire_services.hooks.payload import Delivery

logger = logging.getLogger(__name__)

# A claimed delivery is taken over by another runner after its hook's timeout plus this.
LEASE_MARGIN_S = 5.0
SETTLE_TRIES = 5


class Dispatcher:
    """Claims deliveries when told of new ones, when a slot frees, when the earliest waiting
    one comes due, and otherwise every `hooks_poll_interval` (a safety pass); idle, it sleeps."""

    def __init__(
        self,
        store: DeliveryStore,
        config: HooksConfig,
        actions: ActionRunner,
        settings: HooksSettings,
    ) -> None:
        self.store = store
        self.config = config
        self.actions = actions
        self.settings = settings
        self.slots = max(1, settings.hooks_concurrency)
        self._running: dict[asyncio.Task[None], Delivery] = {}
        self.alarm = Alarm(settings.hooks_poll_interval)
        self.counts = {"succeeded": 0, "failed": 0, "retried": 0, "stale": 0}

    def wake(self) -> None:
        self.alarm.now()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def run(self) -> None:
        backoff = Backoff()
        lease = self.config.longest_timeout + LEASE_MARGIN_S
        while True:
            free = self.slots - len(self._running)
            if free > 0:
                try:
                    claimed, next_due = await self.store.claim(free, lease)
                    backoff.reset()
                except Exception as exc:
                    await backoff.failed("hooks dispatcher", exc)
                    continue
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(delivery), name="hook-delivery")
                    self._running[task] = delivery
                    task.add_done_callback(self._done)
                if len(claimed) == free:
                    continue  # more may be due right now
                self.alarm.at(next_due)
            await self.alarm.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.alarm.now()
        if not task.cancelled() and task.exception() is not None:
            logger.error("hook delivery crashed", exc_info=task.exception())

    async def _deliver(self, delivery: Delivery) -> None:
        hook = self.config.by_name(delivery.hook)
        if hook is None:
            outcome = Outcome(False, "hook is no longer in the hooks file")
            final = True
        else:
            outcome = await self.actions.run(hook, delivery)
            final = outcome.ok or delivery.attempt >= hook.max_attempts
        message = f"{delivery.hook}: {outcome.detail}"
        if final:
            verdict, next_ms = ("ok" if outcome.ok else "fail"), 0
        else:
            verdict = "retry"
            delay = backoff_delay(
                delivery.attempt,
                self.settings.hooks_retry_initial_backoff,
                self.settings.hooks_retry_max_backoff,
            )
            next_ms = now_ms() + int(delay * 1000)
            logger.info(
                "hook %s attempt %d failed (%s); retry in %.2fs",
                delivery.hook,
                delivery.attempt,
                outcome.detail,
                delay,
            )
        await self._settle(delivery, verdict, message, next_ms)

    async def _settle(self, delivery: Delivery, verdict: str, message: str, next_ms: int) -> None:
        backoff = Backoff(initial=0.1, cap=2.0)
        for _ in range(SETTLE_TRIES):
            try:
                applied = await self.store.settle(delivery, verdict, message, next_ms)
                break
            except Exception as exc:
                await backoff.failed("settling a hook delivery", exc)
        else:
            # The lease runs out and the delivery runs again: at-least-once, never lost.
            logger.error("could not record outcome of delivery %s", delivery.delivery_id)
            return
        if not applied:
            self.counts["stale"] += 1
        elif verdict == "retry":
            self.counts["retried"] += 1
            self.alarm.at(next_ms)
        else:
            self.counts["succeeded" if verdict == "ok" else "failed"] += 1
            log = logger.info if verdict == "ok" else logger.warning
            log("hook %s (event %s, attempt %d)", message, delivery.entry_id, delivery.attempt)

    async def drain(self, grace: float) -> None:
        """Let running hooks finish for `grace` seconds; cancel and hand back the rest."""
        running = dict(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=grace)
        if not late:
            return
        for task in late:
            task.cancel()
        await asyncio.wait(late, timeout=grace + 1)
        try:
            await self.store.release([running[t] for t in late])
        except Exception:
            logger.warning("could not hand back %d hook deliveries; their leases will", len(late))
