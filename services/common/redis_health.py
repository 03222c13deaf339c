"""Redis reachability of one service: a PING probe that flips gRPC health and gates RPCs.

While Redis is unreachable a service answers health NOT_SERVING and refuses RPCs at once with
UNAVAILABLE (reason REDIS_UNAVAILABLE) instead of letting each one wait out socket timeouts and
client retries; RPCs already running when Redis is lost are ended the same way. When a probe
succeeds again the service serves again, without a restart.

The first successful probe, and the first after each outage, also checks that Redis cannot
evict keys (redis_policy.py); a Redis that can is refused: `refused` is set, the service stays
NOT_SERVING and `on_refused` is told (the process then exits, see process.serve).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import AuthenticationError

from hivewire.core.background import cancel_and_wait
from hivewire.core.backoff import backoff_delay
from hivewire.core.clock import now_ms
from hivewire.core.redis_url import redact_url
from hivewire_services.common.errors import Unavailable
from hivewire_services.common.redis import REDIS_UNAVAILABLE, create_redis
from hivewire_services.common.redis_policy import EvictingRedis, check_noeviction

logger = logging.getLogger(__name__)

# A frozen Redis (SIGSTOP, a long blocking script) fails the probe by timeout, a dead one at
# once; two failures in a row trip the gate so one slow PING on a loaded host does not.
TRIP_AFTER = 2
RECHECK_DELAY = 0.1


def redis_unavailable() -> Unavailable:
    return Unavailable("redis is unavailable; retry later", reason="REDIS_UNAVAILABLE")


class RedisGate:
    """`available` says whether Redis answered the last probes; `guard()` bounds running RPCs."""

    def __init__(
        self,
        redis_url: str,
        *,
        interval: float = 1.0,
        timeout: float = 1.0,
        on_change: Callable[[bool], Awaitable[None]] | None = None,
    ) -> None:
        self._url = redis_url
        self._redis = create_redis(redis_url, socket_timeout=timeout, retries=0, max_connections=2)
        self.interval = interval
        self.timeout = timeout
        self.on_change = on_change
        self.available = True
        self.trips = 0
        # When Redis last became reachable again after being lost (epoch ms; 0: never lost).
        self.recovered_ms = 0
        self.refused: EvictingRedis | None = None
        self.on_refused: Callable[[EvictingRedis], None] | None = None
        self._policy_checked = False
        self._told_credentials = False
        self._failures = 0
        self._suspect = asyncio.Event()
        self._inflight: set[asyncio.Timeout] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-gate")

    async def close(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        await self._redis.aclose()

    def suspect(self) -> None:
        """A Redis call just failed: probe now rather than at the next interval."""
        self._suspect.set()

    def watch(self, scope: asyncio.Timeout) -> None:
        """End `scope` (an `asyncio.timeout(None)`) if Redis is lost while it is open."""
        self._inflight.add(scope)

    def unwatch(self, scope: asyncio.Timeout) -> None:
        self._inflight.discard(scope)

    async def probe(self) -> bool:
        """One PING within the probe timeout; a loading or erroring Redis counts as down, and so
        does one that may evict keys."""
        if self.refused is not None:
            return False
        try:
            await asyncio.wait_for(self._redis.ping(), self.timeout)
            if not self._policy_checked:
                await asyncio.wait_for(check_noeviction(self._redis, self._url), self.timeout)
                self._policy_checked = True
        except AuthenticationError as exc:  # unavailable too, but say why, once per outage
            if not self._told_credentials:
                logger.error(
                    "redis at %s refused this service's user and password (%s); check "
                    "HIVEWIRE_REDIS_URL",
                    redact_url(self._url),
                    exc,
                )
                self._told_credentials = True
            return False
        except (TimeoutError, *REDIS_UNAVAILABLE):
            return False
        except EvictingRedis as exc:
            logger.critical("%s", exc)
            self.refused = exc
            if self.on_refused is not None:
                self.on_refused(exc)
            return False
        except Exception as exc:
            logger.warning("redis probe failed: %s", exc)
            return False
        self._told_credentials = False
        return True

    async def _run(self) -> None:
        while True:
            ok = await self.probe()
            if self.refused is not None:  # for good: probe() told the process, which stops
                self.available = False
                await self._notify(False)
                return
            if ok:
                self._failures = 0
                if not self.available:
                    await self._set(True)
            else:
                self._failures += 1
                if self.available and self._failures >= TRIP_AFTER:
                    await self._set(False)
            if not ok and self.available:
                delay = RECHECK_DELAY  # confirm a first failure quickly
            elif not ok:
                delay = min(self.interval, backoff_delay(self._failures, 0.1, self.interval))
            else:
                delay = self.interval
            self._suspect.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._suspect.wait(), delay)

    async def _set(self, available: bool) -> None:
        self.available = available
        if available:
            self.recovered_ms = now_ms()
            logger.warning("redis is reachable again; serving")
        else:
            self.trips += 1
            self._policy_checked = False  # the Redis that comes back may be configured anew
            logger.warning("redis is unreachable; health NOT_SERVING, refusing RPCs")
            loop = asyncio.get_running_loop()
            for scope in list(self._inflight):
                with contextlib.suppress(RuntimeError):  # already expiring from a prior trip
                    scope.reschedule(loop.time())
        await self._notify(available)

    async def _notify(self, available: bool) -> None:
        if self.on_change is not None:
            try:
                await self.on_change(available)
            except Exception:
                logger.exception("redis gate listener failed")
