"""Children outlive no failed parent: a task that spawned children (ctx.spawn) and ended in any
state but SUCCEEDED (failed past its attempts, timed out, cancelled by any path) is named on
the ended-parents stream by the script that ended it (tasklib.lua `finish`), and a coordinator
cancels its unfinished children, as Temporal's default parent close policy terminates a closed
workflow's children. A retried attempt of the parent keeps them: its spawns with the same
request_id find them again. A parent that succeeded leaves them alone (it chose not to wait).
"""

from __future__ import annotations

import logging

from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry, GroupOptions, StreamConsumer, ack_and_delete
from hivewire_services.coordinator.tasks.children import ChildTasks

logger = logging.getLogger(__name__)

GROUP = "coordinator"
BATCH = 64


class EndedParents(StreamConsumer):
    """Cancels the children of each parent named on the stream, then acknowledges and deletes
    the entries; a coordinator that dies meanwhile leaves them pending for another to claim
    after `claim_idle` seconds (cancelling twice changes nothing)."""

    name = "ended-parents consumer"

    def __init__(
        self, redis: Redis, keys: Keys, consumer: str, children: ChildTasks, claim_idle: float
    ) -> None:
        options = GroupOptions(
            keys.ended_parents, GROUP, consumer, batch=BATCH, claim_idle=claim_idle
        )
        super().__init__(redis, options)
        self.keys = keys
        self._children = children
        self.cancelled = 0

    async def handle(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            try:
                parent = (fields or {})[b"task_id"].decode()
                self.keys.task(parent)  # a well-formed id before it reaches a key
            except (KeyError, UnicodeDecodeError, InvalidArgument):
                logger.warning("dropping malformed ended-parents entry %r", entry_id)
                continue
            cancelled = await self._children.cancel_children(parent)
            if cancelled:
                logger.info("task %s ended: cancelled %d of its children", parent, cancelled)
            self.cancelled += cancelled
        ids = [entry_id for entry_id, _ in entries]
        await ack_and_delete(self.redis, self.keys.ended_parents, GROUP, ids)
