"""Helpers for background loops: capped exponential backoff with jitter between failures."""

from __future__ import annotations

import asyncio
import logging
import random

from services.common.redis import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)


class Backoff:
    """Sleeps longer after each consecutive failure (capped), logging what failed."""

    def __init__(self, initial: float = 0.05, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    async def failed(self, what: str, exc: BaseException) -> None:
        if isinstance(exc, REDIS_UNAVAILABLE):
            logger.warning("%s: redis unavailable (%s); retrying in %.2fs", what, exc, self.delay)
        else:
            logger.error("%s failed; retrying in %.2fs", what, self.delay, exc_info=exc)
        await asyncio.sleep(self.delay * (0.5 + random.random() / 2))
        self.delay = min(self.delay * 2, self.cap)
