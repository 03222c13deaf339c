"""Background loops: backoff that logs what failed, and stopping tasks reliably."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from hivewire.core import backoff as core_backoff
from hivewire_services.common.redis import REDIS_UNAVAILABLE

logger = logging.getLogger(__name__)

# redis-py can swallow a cancellation that lands inside a command (its timeout handling
# retries the read), so a task still running this long after a cancel is cancelled again.
RECANCEL_AFTER = 0.1


class Backoff(core_backoff.Backoff):
    """The core policy, plus a sleep that logs what failed (a warning while Redis is down)."""

    async def failed(self, what: str, exc: BaseException) -> None:
        delay = self.next_delay()
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
