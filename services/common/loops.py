"""Backoff for service loops: the core policy, plus a log line saying what failed and why."""

from __future__ import annotations

import asyncio
import logging

from hivewire.core import backoff as core_backoff
from hivewire_services.common.redis import REDIS_UNAVAILABLE

__all__ = ["Backoff"]

logger = logging.getLogger(__name__)


class Backoff(core_backoff.Backoff):
    """The core policy, plus a sleep that logs what failed (a warning while Redis is down)."""

    async def failed(self, what: str, exc: BaseException) -> None:
        delay = self.next_delay()
        if isinstance(exc, REDIS_UNAVAILABLE):
            logger.warning("%s: redis unavailable (%s); retrying in %.2fs", what, exc, delay)
        else:
            logger.error("%s failed; retrying in %.2fs", what, delay, exc_info=exc)
        await asyncio.sleep(delay)
