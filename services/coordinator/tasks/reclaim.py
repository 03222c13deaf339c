"""Reclaim: deadlines of in-flight work (reap.lua) and the inboxes of agents gone offline.

An agent whose registry lease expires (or that deregisters) is put in the reclaim set by the
registry. This loop drains its inbox with a GroupReader (unread entries with XREADGROUP,
read-but-unacked ones with XAUTOCLAIM, ids reported deleted just acknowledged) and re-queues
each still-current attempt as the next attempt (reclaim.lua). Several coordinators may run it
at once: every step is fenced by task attempt, so a doubly claimed entry changes nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import cast

from google.protobuf.message import DecodeError

from hivewire.core.clock import now_ms
from hivewire.core.wire import ENVELOPE_FIELD, INBOX_GROUP
from hivewire.v1 import stream_pb2
from hivewire_services.common.alarm import Alarm, OutageHold
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry, GroupOptions, GroupReader
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts

logger = logging.getLogger(__name__)

BATCH = 256
# An offline agent's inbox that took new entries while it was reclaimed is tried again this soon.
RECLAIM_RETRY_MS = 1000


class Reclaimer:
    """Runs a reap and reclaim pass when the earliest lease or deadline runs out, when woken
    (an agent went offline) and otherwise every `reclaim_interval` seconds (a safety pass that
    sees what other coordinators created); idle, it sleeps.

    `due_at(ms)` announces a lease or deadline created here (an assignment, a submitted
    schedule-to-start deadline) that may run out before the one the alarm is set for.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        consumer: str,
        on_change: Callable[[], None],
        probe_recovered_ms: Callable[[], int] | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.consumer = consumer
        self._on_change = on_change
        self._reap = scripts.Reap(redis, keys, settings)
        self._reclaim = scripts.Reclaim(redis, keys, settings)
        self.alarm = Alarm(settings.reclaim_interval)
        # After Redis was lost (a failed pass, or the process's Redis probe saw it) no lease is
        # judged for half an agent lease: agents could not heartbeat meanwhile, and each gets
        # a heartbeat to renew first.
        self._hold = OutageHold(settings.lease_seconds / 2, probe_recovered_ms)
        self.counts = {"reclaimed": 0, "lease_expired": 0, "attempt_timeouts": 0, "timed_out": 0}

    def wake(self) -> None:
        self.alarm.now()

    def due_at(self, due_ms: int) -> None:
        self.alarm.at(due_ms)

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            await self.alarm.wait()
            try:
                if backoff.failures:
                    await self.redis.ping()
                    self._hold.recovered()
                hold_until = self._hold.until_ms()
                if now_ms() < hold_until:
                    self.alarm.at(hold_until)
                else:
                    await self.pass_once()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.alarm.now()  # try again once the backoff has passed
                await backoff.failed("reclaim pass", exc)

    async def pass_once(self) -> None:
        changed = await self.reap_once()
        offline = await self.offline_agents()
        for agent_id in offline:
            changed += await self.reclaim_agent(agent_id)
        if len(offline) >= BATCH:
            self.alarm.now()  # more agents wait
        if changed:
            self._on_change()

    async def reap_once(self) -> int:
        """Enforce leases and deadlines (bounded batches until nothing is due); the alarm is
        set for the earliest one left."""
        total = 0
        while True:
            reaped = await self._reap(now_ms(), BATCH, random.random())
            self.counts["lease_expired"] += reaped.leases
            self.counts["attempt_timeouts"] += reaped.attempts
            self.counts["timed_out"] += reaped.timed_out
            total += reaped.leases + reaped.attempts + reaped.timed_out
            if max(reaped.leases, reaped.attempts, reaped.timed_out) < BATCH:
                self.alarm.at(reaped.next_due)
                return total

    async def offline_agents(self) -> list[str]:
        raw = cast(list[bytes], await self.redis.zrange(self.keys.reclaim_agents, 0, BATCH - 1))
        return [r.decode() for r in raw]

    async def reclaim_agent(self, agent_id: str) -> int:
        """Re-queue everything left in an offline agent's inbox; then forget the inbox."""
        inbox = self.keys.inbox(agent_id)
        lost = 0

        async def requeue(entries: list[Entry]) -> None:
            nonlocal lost
            lost += await self._run_reclaim(agent_id, entries)

        if await self.redis.exists(inbox):
            # The agent owns the group: a missing one means nothing was ever delivered. Unread
            # entries first, then read-but-unacked ones (any idle time: the agent is gone).
            options = GroupOptions(
                stream=inbox,
                group=INBOX_GROUP,
                consumer=self.consumer,
                batch=BATCH,
                claim_idle=0.0,
                create=False,
            )
            await GroupReader(self.redis, options, requeue, name="reclaim").drain()
        done = await self._run_reclaim(agent_id, [])
        if done:
            logger.info("reclaimed inbox of offline agent %s (%d re-queued)", agent_id, lost)
        else:
            self.alarm.at(now_ms() + RECLAIM_RETRY_MS)
        self.counts["reclaimed"] += lost
        return lost

    async def _run_reclaim(self, agent_id: str, entries: list[Entry]) -> int:
        body: list[scripts.ReclaimRow] = []
        for entry_id, fields in entries:
            task_id, attempt = "", 0
            try:
                envelope = stream_pb2.TaskEnvelope.FromString(fields[ENVELOPE_FIELD])
                self.keys.task(envelope.task_id)  # validates the id before it reaches a key
                task_id, attempt = envelope.task_id, envelope.attempt
            except (KeyError, DecodeError, InvalidArgument) as exc:
                logger.warning("dropping malformed inbox entry %s: %s", entry_id, exc)
            body.append(scripts.ReclaimRow(entry_id, task_id, attempt))
        return await self._reclaim(now_ms(), INBOX_GROUP, agent_id, random.random(), body)
