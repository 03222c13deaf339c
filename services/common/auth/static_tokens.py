"""The static token file (HIVEWIRE_AUTH_TOKENS_FILE): named tokens, by id and SHA-256 only, that
the gateway imports into the token store when it starts, upserting each by name, so a deployment
can make its tokens before any service runs (`hivewire secrets init`, docs/security.md).

Importing is idempotent: an entry already there is kept as it is (its revoked flag too); an
entry whose id changed replaces the old token, which stops working.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hivewire.core.api_tokens import StaticToken, parse_static_tokens
from hivewire.core.clock import now_ms
from hivewire_services.common import lua
from hivewire_services.common.auth.tokens import check_token_spec
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis

logger = logging.getLogger(__name__)
_HERE = Path(__file__).parent
VARIABLE = "HIVEWIRE_AUTH_TOKENS_FILE"


def load_static_tokens(path: str) -> list[StaticToken]:
    """The checked entries of the file (ValueError naming the variable and the path)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"{VARIABLE}={path}: {reason}") from None
    try:
        entries = parse_static_tokens(text)
        checked = []
        for e in entries:
            role, tenant, caps = check_token_spec(e.name, e.role, e.tenant, e.capabilities)
            checked.append(StaticToken(e.name, role, e.id, e.sha256, tenant, caps))
    except (ValueError, InvalidArgument) as exc:
        raise ValueError(f"{VARIABLE}={path}: {exc}") from None
    return checked


async def import_static_tokens(redis: Redis, keys: Keys, path: str) -> int:
    """Upsert every entry of the file into the token store; how many were new or changed."""
    script = lua.register(redis, _HERE / "import.lua")
    changed = 0
    created = now_ms()
    for entry in load_static_tokens(path):
        result = await script(
            keys=[keys.auth_token_names, keys.auth_token(entry.id)],
            args=[
                entry.name,
                entry.id,
                entry.sha256,
                entry.role,
                entry.tenant,
                ",".join(entry.capabilities),
                created,
                keys.prefix,
            ],
        )
        changed += result == b"IMPORTED"
    logger.info("imported %d new or changed tokens from %s", changed, path)
    return changed
