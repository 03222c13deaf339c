"""Reads the events stream through the hooks consumer group and schedules hook deliveries.

Reading never waits for a hook: an event becomes delivery records in Redis (intake.lua) and the
dispatcher runs them. Entries a dead runner read and never scheduled are taken over with
XAUTOCLAIM; scheduling is idempotent, so taking over an entry twice is harmless. Every
LOSS_CHECK_EVERY_S (between reads) it asks `HooksGroup.check` whether the stream's cap dropped
unread events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from google.protobuf.message import DecodeError

from hivewire.core.hooks_file import LOOP_TYPES, HooksConfig
from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry, GroupOptions, StreamConsumer
from hivewire_services.hooks.config import HooksSettings
from hivewire_services.hooks.deliveries import DeliveryStore, Scheduled
from hivewire_services.hooks.group import HooksGroup
from hivewire_services.hooks.matching import hooks_for

logger = logging.getLogger(__name__)

READ_COUNT = 200
# Losses are looked for between reads, at most this often; reads wake on new events (the only
# time the cap can drop any), so an idle runner does not look at all.
LOSS_CHECK_EVERY_S = 5.0
# While the backlog is full, how often it is looked at again (at most).
BACKLOG_RECHECK_S = 0.5


class EventIntake(StreamConsumer):
    name = "hooks intake"

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: HooksSettings,
        store: DeliveryStore,
        group: HooksGroup,
        config: HooksConfig,
        consumer: str,
        on_scheduled: Callable[[], None],
    ) -> None:
        # The group starts at "$" (HooksGroup.check creates it); intake.lua acknowledges each
        # entry once its deliveries are stored.
        options = GroupOptions(
            keys.events,
            HOOKS_GROUP,
            consumer,
            batch=READ_COUNT,
            claim_idle=settings.hooks_claim_idle,
            start_id="$",
        )
        super().__init__(redis, options)
        self.keys = keys
        self.settings = settings
        self.store = store
        self.group = group
        self.config = config
        self._on_scheduled = on_scheduled
        self.counts = {"read": 0, "scheduled": 0, "acked": 0, "lost": 0}
        self._full = False
        self._checked_at = float("-inf")

    async def check_losses(self) -> int:
        """Create the group if missing; count events the cap dropped before we read them."""
        self._checked_at = asyncio.get_running_loop().time()
        lost = await self.group.check()
        self.counts["lost"] += lost
        return lost

    async def before_read(self) -> float | None:
        if asyncio.get_running_loop().time() - self._checked_at >= LOSS_CHECK_EVERY_S:
            await self.check_losses()
        return None  # nothing timed: the next read waits for events

    async def trimmed(self, entry_ids: list[bytes]) -> None:
        self.counts["lost"] += await self.group.trimmed(entry_ids)

    async def capacity(self) -> int:
        """Events we may read now: the backlog of events waiting for hooks is bounded.

        When hooks fall behind, unread events wait in the (capped) events stream instead,
        and this waits for the dispatcher to work the backlog down.
        """
        while True:
            _, waiting = await self.store.backlog()
            room = self.settings.hooks_max_backlog - waiting
            if room > 0:
                if self._full:
                    logger.info("hooks backlog down to %d events; reading resumed", waiting)
                self._full = False
                return room
            if not self._full:
                logger.warning("%d events wait for their hooks; reading paused", waiting)
            self._full = True
            await asyncio.sleep(min(self.settings.hooks_poll_interval, BACKLOG_RECHECK_S))

    async def handle(self, entries: list[Entry]) -> None:
        """Schedule the hooks of a batch of entries (entries with none are acknowledged)."""
        batch: list[Scheduled] = []
        for entry_id, fields in entries:
            raw = fields.get(EVENT_FIELD, b"")
            names: list[str] = []
            try:
                event = event_pb2.Event.FromString(raw)
            except DecodeError:
                logger.warning("skipping undecodable events entry %r", entry_id)
            else:
                if event.type not in LOOP_TYPES:  # never react to our own outcomes
                    names = await hooks_for(self.config, self.redis, self.keys, event)
            batch.append((entry_id, raw, names))
        scheduled, acked = await self.store.schedule(batch)
        self.counts["read"] += len(entries)
        self.counts["scheduled"] += scheduled
        self.counts["acked"] += acked
        if scheduled:
            self._on_scheduled()
