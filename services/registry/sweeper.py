"""The lease sweeper: agents whose lease ran out are taken offline (see expire.lua)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hivewire.core.backoff import backoff_delay
from hivewire_services.common.redis import REDIS_UNAVAILABLE
from hivewire_services.registry.store import AgentStore

logger = logging.getLogger(__name__)


class LeaseSweeper:
    """Every `interval` seconds, expires due leases. Safe to run in several registries at once.

    After a sweep fails (Redis unreachable) no lease is expired for `outage_grace` seconds
    once Redis answers again: agents could not heartbeat during the outage, and each gets one
    heartbeat interval to renew before it is judged dead.
    """

    def __init__(
        self,
        store: AgentStore,
        interval: float,
        outage_grace: float = 0.0,
        on_offline: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._interval = interval
        self._outage_grace = outage_grace
        self._on_offline = on_offline  # e.g. remove their Redis users (agent_users.py)

    async def sweep_once(self) -> list[str]:
        expired = await self._store.expire_leases()
        for agent_id in expired:
            logger.info("agent %s lease expired; now offline", agent_id)
        if expired and self._on_offline is not None:
            await self._on_offline(expired)
        return expired

    async def run(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        hold_until = 0.0
        while True:
            try:
                if failures:
                    await self._store.ping()
                    hold_until = loop.time() + self._outage_grace  # counted from recovery
                elif loop.time() >= hold_until:
                    await self.sweep_once()
                failures = 0
                delay = self._interval
            except Exception as exc:
                failures += 1
                delay = max(self._interval, backoff_delay(failures))
                logger.warning(
                    "lease sweep failed; retry in %.2fs",
                    delay,
                    exc_info=not isinstance(exc, REDIS_UNAVAILABLE),
                )
            await asyncio.sleep(delay)
