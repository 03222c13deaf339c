"""Refuse a Redis that may evict keys: an evicted task hash or stream entry is a task lost.

Read from `INFO memory` rather than `CONFIG GET`: INFO is allowed to the services' ACL users
(CONFIG GET would also read `requirepass`) and is what managed Redis offerings keep open.
"""

from __future__ import annotations

import logging

from redis.exceptions import NoPermissionError, ResponseError

from hivewire.core.redis_url import redact_url
from hivewire_services.common.redis import Redis

logger = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


class EvictingRedis(RuntimeError):
    """Redis runs with a maxmemory-policy other than noeviction: the service will not use it."""


async def maxmemory_policy(redis: Redis) -> str | None:
    """The policy `INFO memory` reports; None when this user may not run INFO."""
    try:
        info = await redis.info("memory")
    except NoPermissionError:
        return None
    except ResponseError as exc:  # INFO renamed or disabled by a managed Redis
        logger.debug("INFO memory refused: %s", exc)
        return None
    policy = info.get("maxmemory_policy")
    return policy.decode() if isinstance(policy, bytes) else None if policy is None else str(policy)


async def check_noeviction(redis: Redis, url: str) -> None:
    """EvictingRedis naming the policy and the fix unless Redis says noeviction; a warning
    only when the policy cannot be read."""
    policy = await maxmemory_policy(redis)
    if policy is None:
        logger.warning(
            "cannot read maxmemory-policy of redis at %s (INFO memory refused); make sure it "
            "is %s, or tasks may be evicted",
            redact_url(url),
            SAFE_POLICY,
        )
        return
    if policy != SAFE_POLICY:
        raise EvictingRedis(
            f"redis at {redact_url(url)} has maxmemory-policy {policy}: it may evict tasks, "
            f"results and streams under memory pressure. Hivewire needs {SAFE_POLICY} "
            f"(maxmemory-policy {SAFE_POLICY} in redis.conf, or CONFIG SET maxmemory-policy "
            f"{SAFE_POLICY}); refusing to run"
        )
