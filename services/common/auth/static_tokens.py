"""The static token file (HIVEWIRE_AUTH_TOKENS_FILE): named tokens, by id and SHA-256 only, that
the gateway imports into the token store when it starts, upserting each by name, so a deployment
can make its tokens before any service runs (`hivewire secrets init`, docs/security.md).

Importing is idempotent: an entry already there is kept as it is (its revoked flag too); an
entry whose id changed replaces the old token, which stops working; a token an earlier import
made that the file no longer names is removed, so it stops working too (tokens made through the
API are never touched).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

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
    """Upsert every entry of the file into the token store, then remove the file's earlier
    tokens it no longer names; how many were new, changed or removed."""
    script = lua.register(redis, _HERE / "import.lua")
    changed = 0
    created = now_ms()
    entries = load_static_tokens(path)
    for entry in entries:
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
    removed = await _forget_unnamed(redis, keys, {e.name for e in entries})
    logger.info(
        "imported %d new or changed tokens from %s; removed %d it no longer names",
        changed,
        path,
        len(removed),
    )
    return changed + len(removed)


async def _forget_unnamed(redis: Redis, keys: Keys, named: set[str]) -> list[str]:
    """Remove the tokens an earlier import made whose names the file no longer holds."""
    script = lua.register(redis, _HERE / "forget.lua")
    names = cast("dict[bytes, bytes]", await redis.hgetall(keys.auth_token_names))
    removed = []
    for name in sorted(n.decode() for n in names):
        if name in named:
            continue
        result = await script(keys=[keys.auth_token_names], args=[name, keys.prefix])
        if result == b"REMOVED":
            logger.warning("token %r is no longer in the static token file: removed", name)
            removed.append(name)
    return removed
