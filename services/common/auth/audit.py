"""The audit trail of denied calls: a bounded Redis stream (keys.py `auth_audit`) and the
hivewire_auth_denied_total counter. Writing the trail never fails the call it records."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import AUTH_DENIED
from hivewire_services.common.redis import Redis

logger = logging.getLogger(__name__)

AUDIT_MAXLEN = 10_000
MAX_REASON = 256


@dataclass(frozen=True)
class Denial:
    """One refused call."""

    service: str
    method: str
    principal: str
    peer: str
    code: str
    reason: str

    def fields(self) -> dict[str, str]:
        return {
            "ms": str(int(time.time() * 1000)),
            "service": self.service,
            "method": self.method,
            "principal": self.principal,
            "peer": self.peer,
            "code": self.code,
            "reason": self.reason[:MAX_REASON],
        }


class Audit:
    """Counts and records denials of one service."""

    def __init__(self, redis: Redis, keys: Keys, service: str, maxlen: int = AUDIT_MAXLEN):
        self.redis = redis
        self.keys = keys
        self.service = service
        self.maxlen = maxlen

    async def denied(
        self, method: str, code: str, reason: str, *, principal: str = "", peer: str = ""
    ) -> None:
        AUTH_DENIED.labels(method=method, code=code).inc()
        denial = Denial(self.service, method, principal, peer, code, reason)
        logger.warning("denied %s %s for %r from %s: %s", code, method, principal, peer, reason)
        try:
            await self.redis.xadd(
                self.keys.auth_audit,
                denial.fields(),  # type: ignore[arg-type]
                maxlen=self.maxlen,
                approximate=True,
            )
        except Exception:  # the trail is best effort; the call is refused either way
            logger.exception("could not append to the audit stream")

    async def read(self, count: int) -> list[dict[str, str]]:
        """The newest `count` entries, newest first."""
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.redis.xrevrange(self.keys.auth_audit, count=count),
        )
        return [
            {"id": entry_id.decode(), **{k.decode(): v.decode() for k, v in fields.items()}}
            for entry_id, fields in rows
        ]
