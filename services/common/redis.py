"""Redis connection factory: hiredis parser, capped exponential backoff with jitter, timeouts.

The URL carries everything about the connection: `rediss://` for TLS, `user:password@` for
AUTH, and redis-py's `ssl_*` query parameters for certificates (docs/security.md, Redis).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hivewire.core.redis_client import blocking_reads, close_quietly, connection_class

__all__ = ["REDIS_UNAVAILABLE", "Redis", "blocking_reads", "close_quietly", "create_redis"]

Redis = aioredis.Redis


class PoolExhausted(MaxConnectionsError):
    """Every connection of the pool stayed busy for the whole wait: this process is overloaded,
    Redis itself may be fine (so it is no outage: see `redis_errors`)."""


class WaitingPool(aioredis.BlockingConnectionPool):
    """A blocking pool whose wait for a free connection ends in PoolExhausted (redis-py says
    only "No connection available.", a plain ConnectionError, as if Redis were down)."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RedisConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise PoolExhausted(
                    f"all {self.max_connections} redis connections stayed busy for {self.timeout}s"
                ) from exc
            raise


def create_redis(
    url: str,
    *,
    socket_timeout: float = 5.0,
    retries: int = 3,
    max_connections: int = 64,
) -> Redis:
    """A client for `url` whose commands retry connection errors a few times, then raise.

    Blocking reads longer than `socket_timeout` need a client of their own (`blocking_reads`).
    When all `max_connections` are busy a command waits for one (up to `socket_timeout`)
    rather than failing at once, so a burst of concurrent RPCs queues instead of being refused;
    past that wait it raises PoolExhausted.
    """
    retry = Retry(ExponentialWithJitterBackoff(cap=1.0, base=0.05), retries)
    pool = WaitingPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=2.0,
        retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        decode_responses=False,
        **connection_class(url),
    )
    return aioredis.Redis.from_pool(pool)


REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
