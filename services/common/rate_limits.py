"""Named rate limits: define, list and delete them, and check the units tasks ask for.

A limit allows `limit` units per fixed window of `window_ms`, windows aligned on the epoch;
the coordinator's assign.lua (flowgate.lua) takes a task's units when it assigns the task,
and parks a task whose units do not fit in the due set until the window ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from hivewire.core.clock import now_ms
from hivewire.v1 import flow_pb2
from hivewire_services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import (
    MAX_RATE_LIMIT_UNITS,
    MAX_RATE_LIMITS,
    MAX_RATE_WINDOW_MS,
    MIN_RATE_WINDOW_MS,
    check_name,
)


@dataclass(frozen=True)
class RateLimitUsage:
    name: str
    limit: int
    window_ms: int
    used: int
    """Units taken in the current window."""
    waiting: int
    """Tasks waiting for a later window."""


def _parse(raw: bytes | str) -> tuple[int, int]:
    limit, window = raw.split()
    return int(limit), int(window)


def usage_message(u: RateLimitUsage) -> flow_pb2.RateLimitUsage:
    msg = flow_pb2.RateLimitUsage(used=u.used, waiting_tasks=u.waiting)
    msg.limit.name, msg.limit.limit = u.name, u.limit
    msg.limit.window.FromMilliseconds(u.window_ms)
    return msg


class RateLimits:
    """The rate limit definitions in Redis (one hash), and their usage."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def set(self, name: str, limit: int, window_ms: int) -> None:
        check_name(name, "limit.name")
        if not 1 <= limit <= MAX_RATE_LIMIT_UNITS:
            raise InvalidArgument(
                f"limit.limit must be 1..{MAX_RATE_LIMIT_UNITS}", field="limit.limit"
            )
        if not MIN_RATE_WINDOW_MS <= window_ms <= MAX_RATE_WINDOW_MS:
            raise InvalidArgument("limit.window must be 100 ms .. 1 day", field="limit.window")
        exists = await self.redis.hexists(self.keys.rate_limits, name)
        if not exists and await self.redis.hlen(self.keys.rate_limits) >= MAX_RATE_LIMITS:
            raise ResourceExhausted(
                f"there are {MAX_RATE_LIMITS} rate limits already", reason="TOO_MANY_RATE_LIMITS"
            )
        await self.redis.hset(self.keys.rate_limits, name, f"{limit} {window_ms}")

    async def delete(self, name: str) -> None:
        check_name(name, "name")
        if not await self.redis.hdel(self.keys.rate_limits, name):
            raise NotFound(f"rate limit {name!r} does not exist", reason="RATE_LIMIT_NOT_FOUND")
        await self.redis.hdel(self.keys.rate_usage, name)

    async def list(self) -> list[RateLimitUsage]:
        defs = cast(dict[bytes, bytes], await self.redis.hgetall(self.keys.rate_limits))
        if not defs:
            return []
        names = sorted(k.decode() for k in defs)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.rate_usage, names)
            for name in names:
                pipe.zcard(self.keys.rate_waiting(name))
            usage, *waiting = await pipe.execute()
        now = now_ms()
        out = []
        for name, raw_usage, n_waiting in zip(names, usage, waiting, strict=True):
            limit, window = _parse(defs[name.encode()])
            used = 0
            if raw_usage:
                start, taken = raw_usage.split()
                if int(start) == now - now % window:
                    used = int(taken)
            out.append(RateLimitUsage(name, limit, window, used, int(n_waiting)))
        return out

    async def check_units(self, requests: Iterable[tuple[str, Mapping[str, int]]]) -> None:
        """Every limit named exists (else INVALID_ARGUMENT, reason RATE_LIMIT_NOT_FOUND) and
        holds the units asked for in one window (else INVALID_ARGUMENT). `requests` are
        (field prefix, units) per task; one read for the whole batch."""
        wanted = [(where, name, n) for where, units in requests for name, n in units.items()]
        if not wanted:
            return
        names = sorted({name for _, name, _ in wanted})
        raw = await self.redis.hmget(self.keys.rate_limits, names)
        limits = {name: _parse(r)[0] for name, r in zip(names, raw, strict=True) if r}
        for where, name, n in wanted:
            field = f"{where}rate_limit_units[{name}]"
            if name not in limits:
                raise InvalidArgument(
                    f"rate limit {name!r} does not exist (create it with SetRateLimit)",
                    reason="RATE_LIMIT_NOT_FOUND",
                    field=field,
                )
            if n > limits[name]:
                raise InvalidArgument(
                    f"{field} is {n} units, more than rate limit {name!r} allows per window"
                    f" ({limits[name]})",
                    field=field,
                )
