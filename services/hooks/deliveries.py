"""Hook deliveries in Redis: scheduled from events, claimed with a lease, settled atomically.

A delivery is one hook for one events-stream entry. Its events entry stays pending in the
hooks consumer group until every delivery of it has settled (settle.lua acknowledges it), so
nothing is acknowledged before its outcome is recorded. Deliveries wait in one sorted set by
due time: new ones (due now), retries (due after their backoff) and claimed ones (due when
their lease runs out, i.e. taken over if their runner died).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from google.protobuf.message import DecodeError

from hivewire.core.clock import now_ms
from hivewire.v1 import event_pb2
from hivewire_services.common.alarm import due_ms
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.hooks.config import HooksSettings
from hivewire_services.hooks.payload import Delivery

_HERE = Path(__file__).parent
Scheduled = tuple[bytes | str, bytes, Sequence[str]]
"""(events entry id, event bytes, names of the hooks to run for it)."""


def delivery_id(entry_id: bytes | str, hook: str) -> str:
    """Deterministic, so scheduling the same entry again names the same deliveries."""
    entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return hashlib.sha256(f"{entry}/{hook}".encode()).hexdigest()[:32]


class DeliveryStore(RedisStore[HooksSettings]):
    def __init__(self, redis: Redis, keys: Keys, settings: HooksSettings) -> None:
        super().__init__(redis, keys, settings)
        scripts = self.scripts(_HERE, "intake", "claim", "settle", "release")
        self._intake, self._claim, self._settle, self._release = scripts

    async def schedule(self, entries: Sequence[Scheduled]) -> tuple[int, int]:
        """Create deliveries (or ack entries with no hook); returns (scheduled, acked)."""
        if not entries:
            return 0, 0
        args: list[str | bytes | int] = [
            self.keys.hook_delivery_prefix,
            HOOKS_GROUP,
            now_ms(),
            len(entries),
        ]
        for entry_id, event_bytes, hooks in entries:
            args += [entry_id, event_bytes if hooks else b"", len(hooks)]
            for hook in hooks:
                args += [delivery_id(entry_id, hook), hook]
        keys = [self.keys.events, self.keys.hook_due, self.keys.hook_entries]
        scheduled, acked = await self._intake(keys=keys, args=args)
        return int(scheduled), int(acked)

    async def claim(self, limit: int, lease_seconds: float) -> tuple[list[Delivery], int | None]:
        """Up to `limit` due deliveries, each leased to this runner for `lease_seconds`, and
        when the earliest delivery left comes due (epoch ms; None when none waits)."""
        next_due, *flat = await self._claim(
            keys=[self.keys.hook_due],
            args=[self.keys.hook_delivery_prefix, now_ms(), limit, int(lease_seconds * 1000)],
        )
        out = []
        for i in range(0, len(flat), 5):
            did, hook, entry, raw, attempt = flat[i : i + 5]
            try:
                event = event_pb2.Event.FromString(raw)
            except DecodeError:
                event = event_pb2.Event(message="undecodable event")
            event.cursor = entry.decode()
            out.append(Delivery(did.decode(), hook.decode(), entry.decode(), event, int(attempt)))
        return out, due_ms(next_due)

    async def settle(
        self, delivery: Delivery, verdict: str, message: str, next_ms: int = 0
    ) -> bool:
        """`ok`, `fail` (both final, recorded as hook events) or `retry` at `next_ms`."""
        ev = delivery.event
        applied = await self._settle(
            keys=[self.keys.events, self.keys.hook_due, self.keys.hook_entries],
            args=[
                self.keys.hook_delivery_prefix,
                HOOKS_GROUP,
                now_ms(),
                self.settings.events_maxlen,
                delivery.delivery_id,
                delivery.attempt,
                verdict,
                next_ms,
                message,
                ev.task_id,
                ev.workflow_id,
                ev.agent_id,
                ev.capability,
                ev.step_id,
            ],
        )
        return bool(applied)

    async def release(self, deliveries: Sequence[Delivery]) -> None:
        """Hand claimed deliveries back (due now) when stopping before they finished."""
        if not deliveries:
            return
        args: list[str | int] = [self.keys.hook_delivery_prefix, now_ms()]
        for d in deliveries:
            args += [d.delivery_id, d.attempt]
        await self._release(keys=[self.keys.hook_due], args=args)

    async def backlog(self) -> tuple[int, int]:
        """(deliveries not settled, events entries waiting for their hooks)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.hook_due)
            pipe.hlen(self.keys.hook_entries)
            due, entries = await pipe.execute()
        return int(due), int(entries)
