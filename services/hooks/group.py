"""The hooks consumer group on the events stream, and the events it lost to the stream's cap.

The coordinator's trimmer never trims past an entry the group still needs; only the hard cap
emit_event applies (10 x HIVEWIRE_EVENTS_MAXLEN) can drop entries the runners have not read,
when they are down or paused that long. Such losses are never silent: `check` (at start and
every few seconds) compares what Redis says was added to the stream with what the group read
(losses.lua), and `trimmed` looks at pending entries XAUTOCLAIM found deleted (trimmed.lua).
Each loss is counted once in Redis (`hivewire_hook_events_lost_total`), appended as a
`hook.failed` event ("events lost: ...") and logged as an error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from hivewire.core.clock import now_ms
from hivewire_services.common.keys import HOOKS_GROUP, Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.store import RedisStore
from hivewire_services.hooks.config import HooksSettings

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
# Most unread entries counted in one check; a group further behind is checked once it caught up.
SCAN_LIMIT = 1000


class HooksGroup(RedisStore[HooksSettings]):
    def __init__(self, redis: Redis, keys: Keys, settings: HooksSettings) -> None:
        super().__init__(redis, keys, settings)
        self._losses, self._trimmed = self.scripts(_HERE, "losses", "trimmed")
        self._warned_unsupported = False

    async def check(self) -> int:
        """Create the group if missing (new events only); count and record lost events.

        Returns how many events this call found lost (0 almost always).
        """
        lost, state = await self._losses(
            keys=[self.keys.events, self.keys.hook_events_lost],
            args=[HOOKS_GROUP, now_ms(), self.settings.events_maxlen, SCAN_LIMIT],
        )
        state = state.decode() if isinstance(state, bytes) else str(state)
        if state == "unsupported" and not self._warned_unsupported:
            self._warned_unsupported = True
            logger.warning(
                "Redis before 7.0 keeps no stream counters: events lost to the events cap "
                "before the hooks runners read them go uncounted"
            )
        elif state == "synced":
            logger.info("hooks group read counter set (it was unknown to Redis)")
        if int(lost):
            logger.error(
                "%d events were trimmed from the events stream before the hooks runners read "
                "them: any hooks they would have triggered never ran (raise "
                "HIVEWIRE_EVENTS_MAXLEN, or keep a runner up)",
                int(lost),
            )
        return int(lost)

    async def trimmed(self, entry_ids: Sequence[bytes]) -> int:
        """Pending entries found trimmed: count those whose hooks were never scheduled."""
        lost = int(
            await self._trimmed(
                keys=[self.keys.events, self.keys.hook_entries, self.keys.hook_events_lost],
                args=[now_ms(), self.settings.events_maxlen, *entry_ids],
            )
        )
        if lost:
            logger.error(
                "%d events read by a stopped hooks runner were trimmed from the events stream "
                "before their hooks were scheduled: any hooks they would have triggered never ran",
                lost,
            )
        return lost

    async def lost_total(self) -> int:
        """Events lost so far, by every runner (the counter behind the metric)."""
        return int(await self.redis.get(self.keys.hook_events_lost) or 0)
