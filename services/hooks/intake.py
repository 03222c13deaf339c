"""Reads the events stream through the hooks consumer group and schedules hook deliveries.

Reading never waits for a hook: an event becomes delivery records in Redis (intake.lua) and the
dispatcher runs them. Entries a dead runner read and never scheduled are taken over with
XAUTOCLAIM; scheduling is idempotent, so taking over an entry twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from google.protobuf.message import DecodeError

from hivewire.core.hooks_file import LOOP_TYPES, HooksConfig
from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.hooks.config import HooksSettings
from hivewire_services.hooks.deliveries import DeliveryStore, Scheduled
from hivewire_services.hooks.matching import hooks_for

logger = logging.getLogger(__name__)

READ_COUNT = 200
READ_BLOCK_MS = 1000
Entry = tuple[bytes, dict[bytes, bytes]]


class EventIntake:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: HooksSettings,
        store: DeliveryStore,
        config: HooksConfig,
        consumer: str,
        on_scheduled: Callable[[], None],
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.store = store
        self.config = config
        self.consumer = consumer
        self._on_scheduled = on_scheduled
        self.counts = {"read": 0, "scheduled": 0, "acked": 0}
        self._full = False

    async def run(self) -> None:
        backoff = Backoff()
        loop = asyncio.get_running_loop()
        claim_every = max(self.settings.hooks_claim_idle / 2, 0.05)
        last_claim = -claim_every
        while True:
            try:
                await self.store.ensure_group()
                while True:
                    if loop.time() - last_claim >= claim_every:
                        last_claim = loop.time()
                        await self.claim_abandoned()
                    room = await self._room()
                    if room <= 0:
                        await asyncio.sleep(self.settings.hooks_poll_interval)
                        continue
                    reply = await self.redis.xreadgroup(
                        HOOKS_GROUP,
                        self.consumer,
                        {self.keys.events: ">"},
                        count=min(READ_COUNT, room),
                        block=READ_BLOCK_MS,
                    )
                    for _, entries in cast(list[tuple[bytes, list[Entry]]] | None, reply) or []:
                        await self.handle(entries)
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await backoff.failed("hooks intake", exc)

    async def _room(self) -> int:
        """Events we may still read: the backlog of events waiting for hooks is bounded.

        When hooks fall behind, unread events wait in the (capped) events stream instead.
        """
        _, waiting = await self.store.backlog()
        room = self.settings.hooks_max_backlog - waiting
        if room <= 0 and not self._full:
            logger.warning("%d events wait for their hooks; reading paused", waiting)
        self._full = room <= 0
        return room

    async def claim_abandoned(self) -> None:
        """Take over entries read by a runner that died before scheduling their hooks."""
        start: bytes | str = "0-0"
        idle_ms = int(self.settings.hooks_claim_idle * 1000)
        while True:
            reply = await self.redis.xautoclaim(
                self.keys.events,
                HOOKS_GROUP,
                self.consumer,
                idle_ms,
                start_id=start,
                count=READ_COUNT,
            )
            start, entries = reply[0], cast(list[Entry], reply[1])
            # reply[2]: ids trimmed from the stream; Redis drops them from the group itself.
            if entries:
                await self.handle(entries)
            if start in (b"0-0", "0-0"):
                return

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
