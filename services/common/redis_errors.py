"""What a Redis failure means for a caller: the one mapping of redis-py errors to domain errors.

- unreachable (connection refused or reset, timeout): UNAVAILABLE, an outage the RedisGate
  confirms with its probe;
- out of memory (`OOM command not allowed`, maxmemory reached under noeviction): nothing was
  written; RESOURCE_EXHAUSTED until work drains or Redis gets more memory;
- this process's connection pool stayed full: RESOURCE_EXHAUSTED, an overload of this
  process, not a Redis outage (the gate is not told).
"""

from __future__ import annotations

from redis.exceptions import MaxConnectionsError, OutOfMemoryError

from hivewire_services.common.errors import HivewireError, ResourceExhausted, Unavailable
from hivewire_services.common.redis import REDIS_UNAVAILABLE


def redis_error(exc: BaseException) -> HivewireError | None:
    """The domain error a Redis failure stands for; None when `exc` is not one of those."""
    if isinstance(exc, MaxConnectionsError):
        return ResourceExhausted(
            "too many concurrent redis calls in this service; retry with backoff",
            reason="REDIS_POOL_EXHAUSTED",
        )
    if isinstance(exc, OutOfMemoryError):
        return ResourceExhausted(
            "redis is out of memory (maxmemory reached); nothing was written, retry once "
            "work drains or redis has more memory",
            reason="REDIS_OUT_OF_MEMORY",
        )
    if isinstance(exc, REDIS_UNAVAILABLE):
        return Unavailable(
            f"redis is unavailable: {type(exc).__name__}", reason="REDIS_UNAVAILABLE"
        )
    return None


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says Redis may be unreachable (worth a probe), not a local overload."""
    return isinstance(exc, REDIS_UNAVAILABLE) and not isinstance(exc, MaxConnectionsError)
