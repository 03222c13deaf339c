"""Background loops: capped exponential backoff with jitter, and stopping tasks reliably."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from typing import Any

from hivewire_services.common.redis import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)

# redis-py can swallow a cancellation that lands inside a command (its timeout handling
# retries the read), so a task still running this long after a cancel is cancelled again.
RECANCEL_AFTER = 0.1


def backoff_delay(failures: int, base: float = 0.05, cap: float = 5.0) -> float:
    """Seconds to wait after `failures` consecutive failures (capped, equal jitter)."""
    ceiling = min(cap, base * 2 ** min(max(failures - 1, 0), 30))
    return random.uniform(ceiling / 2, ceiling)


class Backoff:
    """Sleeps longer after each consecutive failure (capped), logging what failed."""

    def __init__(self, base: float = 0.05, cap: float = 5.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    async def failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        delay = backoff_delay(self.failures, self.base, self.cap)
        if isinstance(exc, REDIS_UNAVAILABLE):
            logger.warning("%s: redis unavailable (%s); retrying in %.2fs", what, exc, delay)
        else:
            logger.error("%s failed; retrying in %.2fs", what, delay, exc_info=exc)
        await asyncio.sleep(delay)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel tasks and wait until every one has ended, cancelling again where one was lost."""
    live = [t for t in tasks if t is not None]
    pending = {t for t in live if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
