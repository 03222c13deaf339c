"""Stopping background asyncio tasks reliably, for the SDK and the services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

# redis-py can swallow a cancellation that lands inside a command (its timeout handling
# retries the read), so a task still running this long after a cancel is cancelled again.
RECANCEL_AFTER = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel tasks and wait until every one has ended, cancelling again where one was lost;
    a task that failed rather than being cancelled is logged."""
    live = [t for t in tasks if t is not None]
    pending = {t for t in live if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
