"""API tokens: `hw_<id>_<secret>`, random, shown once, stored only as a SHA-256 hash.

A token's record (keys.py `auth_token`) holds its name, role, tenant, capabilities (agent
tokens), creation time and revoked flag; `auth_token_names` maps each unique name to its id.
Verification reads the record by the id inside the token and compares hashes in constant time.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from hivewire.core.api_tokens import PREFIX, new_token, token_id, token_sha256
from hivewire.core.clock import now_ms
from hivewire_services.common import lua
from hivewire_services.common.errors import AlreadyExists, InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import ROLES, Principal
from hivewire_services.common.redis import Redis
from hivewire_services.common.validation import check_capability

_HERE = Path(__file__).parent
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MAX_CAPABILITIES = 64
# Roles a token may be created with; `service` credentials come from HIVEWIRE_SERVICE_TOKEN.
TOKEN_ROLES = tuple(r for r in ROLES if r != "service")
__all__ = ["PREFIX", "TokenRecord", "TokenStore", "new_token", "token_id", "token_sha256"]


def check_name(value: str, field: str = "name") -> str:
    if not _NAME.fullmatch(value):
        raise InvalidArgument(
            f"{field} must be 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit",
            field=field,
        )
    return value


@dataclass(frozen=True)
class TokenRecord:
    """What the store keeps of a token (never the token)."""

    name: str
    role: str
    tenant: str
    capabilities: tuple[str, ...]
    created_ms: int
    revoked: bool

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.tenant, frozenset(self.capabilities))


def check_token_spec(
    name: str, role: str, tenant: str, capabilities: Sequence[str]
) -> tuple[str, str, tuple[str, ...]]:
    """INVALID_ARGUMENT naming the field; the role, tenant (default: the name) and capabilities."""
    check_name(name)
    if role not in TOKEN_ROLES:
        raise InvalidArgument(f"role must be one of {', '.join(TOKEN_ROLES)}", field="role")
    tenant = check_name(tenant, "tenant") if tenant else name
    if len(capabilities) > MAX_CAPABILITIES:
        raise InvalidArgument(
            f"capabilities has more than {MAX_CAPABILITIES} entries", field="capabilities"
        )
    caps = tuple(check_capability(c, "capabilities") for c in capabilities)
    if caps and role != "agent":
        raise InvalidArgument("capabilities are only for agent tokens", field="capabilities")
    return role, tenant, tuple(sorted(set(caps)))


def _record(fields: dict[bytes, bytes]) -> TokenRecord:
    def get(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    caps = tuple(c for c in get("capabilities").split(",") if c)
    return TokenRecord(
        get("name"),
        get("role"),
        get("tenant"),
        caps,
        int(get("created_ms") or 0),
        get("revoked") == "1",
    )


class TokenStore:
    """Create, revoke, list and verify tokens in Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._create = lua.register(redis, _HERE / "create.lua")
        self._revoke = lua.register(redis, _HERE / "revoke.lua")

    async def create(
        self,
        name: str,
        role: str,
        tenant: str = "",
        capabilities: Sequence[str] = (),
        *,
        replace: bool = False,
    ) -> tuple[str, TokenRecord]:
        """A new token (returned once) and its record; ALREADY_EXISTS for a name in use unless
        `replace` (which re-issues the name: the old token stops working)."""
        role, tenant, caps = check_token_spec(name, role, tenant, capabilities)
        new_id, token = new_token()
        created = now_ms()
        k = self.keys
        result = await self._create(
            keys=[k.auth_token_names, k.auth_token(new_id)],
            args=[
                name,
                new_id,
                token_sha256(token),
                role,
                tenant,
                ",".join(caps),
                created,
                "1" if replace else "0",
                k.prefix,
            ],
        )
        if result == b"ALREADY_EXISTS":
            raise AlreadyExists(f"a token named {name!r} exists already", field="name")
        return token, TokenRecord(name, role, tenant, caps, created, False)

    async def revoke(self, name: str) -> None:
        """Revoke the named token (idempotent); NOT_FOUND for an unknown name."""
        check_name(name)
        result = await self._revoke(
            keys=[self.keys.auth_token_names], args=[name, self.keys.prefix]
        )
        if result == b"NOT_FOUND":
            raise NotFound(f"no token named {name!r}", field="name")

    async def list(self) -> list[TokenRecord]:
        """Every token's record, by name."""
        names = cast("dict[bytes, bytes]", await self.redis.hgetall(self.keys.auth_token_names))
        ids = [names[n].decode() for n in sorted(names)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for token_id_ in ids:
                pipe.hgetall(self.keys.auth_token(token_id_))
            rows = await pipe.execute()
        return [_record(row) for row in rows if row]

    async def verify(self, token: str) -> TokenRecord | None:
        """The record of a valid, unrevoked token; None for anything else."""
        found = token_id(token)
        if found is None:
            return None
        fields = cast("dict[bytes, bytes]", await self.redis.hgetall(self.keys.auth_token(found)))
        stored = fields.get(b"sha256", b"").decode()
        # Constant time: the hash of a guess tells nothing about how close it came.
        if not stored or not hmac.compare_digest(stored, token_sha256(token)):
            return None
        record = _record(fields)
        return None if record.revoked else record
