"""The lease sweeper: agents whose lease ran out are taken offline (see expire.lua)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from hivewire.core.backoff import backoff_delay
from hivewire.core.clock import now_ms
from hivewire_services.common.alarm import Alarm, OutageHold
from hivewire_services.common.redis import REDIS_UNAVAILABLE
from hivewire_services.registry.store import AgentStore

logger = logging.getLogger(__name__)


class LeaseSweeper:
    """Expires leases when the earliest one runs out. Safe to run in several registries at once.

    Idle, it sleeps: until the earliest lease in Redis runs out, and at most `lease_seconds`
    (a lease granted meanwhile, here or by another registry, runs at least that long) or
    `longest` seconds. After Redis was lost (a sweep failed, or the process's Redis probe saw
    it: `probe_recovered_ms`) no lease is expired for `outage_grace` seconds once Redis answers
    again: agents could not heartbeat during the outage, and each gets one heartbeat interval
    to renew before it is judged dead.
    """

    def __init__(
        self,
        store: AgentStore,
        lease_seconds: float,
        longest: float,
        outage_grace: float = 0.0,
        probe_recovered_ms: Callable[[], int] | None = None,
        on_offline: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._lease_ms = int(lease_seconds * 1000)
        self._hold = OutageHold(outage_grace, probe_recovered_ms)
        self.alarm = Alarm(longest)
        self._on_offline = on_offline  # e.g. remove their Redis users (agent_users.py)

    async def sweep_once(self) -> list[str]:
        now = now_ms()
        expired, next_expiry = await self._store.expire_leases(now)
        for agent_id in expired:
            logger.info("agent %s lease expired; now offline", agent_id)
        if expired and self._on_offline is not None:
            await self._on_offline(expired)
        # A lease expires once `now` passes its score: wake a millisecond after it.
        self.alarm.at(None if next_expiry is None else next_expiry + 1)
        self.alarm.at(now + self._lease_ms)
        return expired

    async def run(self) -> None:
        failures = 0
        while True:
            await self.alarm.wait()
            try:
                if failures:
                    await self._store.ping()
                    self._hold.recovered()
                hold_until = self._hold.until_ms()
                if now_ms() < hold_until:
                    self.alarm.at(hold_until)
                else:
                    await self.sweep_once()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = backoff_delay(failures, 1.0, 5.0)
                self.alarm.at(now_ms() + int(delay * 1000))
                logger.warning(
                    "lease sweep failed; retry in %.2fs",
                    delay,
                    exc_info=not isinstance(exc, REDIS_UNAVAILABLE),
                )
