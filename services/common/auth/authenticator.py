"""Who is calling: a call's bearer token checked against the service token and the token store,
the method table applied, and an on-behalf-of principal honoured from services only."""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from hivewire_services.common.auth.cache import TtlCache
from hivewire_services.common.auth.table import allowed
from hivewire_services.common.auth.tokens import TokenStore
from hivewire_services.common.errors import PermissionDenied, Unauthenticated
from hivewire_services.common.principal import (
    DEFAULT_TENANT,
    ON_BEHALF_OF_METADATA,
    Principal,
)

SERVICE = Principal(name="service", role="service", tenant=DEFAULT_TENANT)
_BEARER = "bearer "


def unauthenticated(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason="UNAUTHENTICATED")


def permission_denied(message: str) -> PermissionDenied:
    return PermissionDenied(message, reason="PERMISSION_DENIED")


class Authenticator:
    """Turns a call's metadata into its principal, or raises UNAUTHENTICATED/PERMISSION_DENIED."""

    def __init__(
        self, store: TokenStore, service_token: str = "", cache: TtlCache[Principal] | None = None
    ) -> None:
        self.store = store
        self._service_token = service_token
        self.cache: TtlCache[Principal] = cache if cache is not None else TtlCache()

    async def caller(self, token: str) -> Principal:
        """The principal of a bearer token (UNAUTHENTICATED for a bad or revoked one)."""
        if self._service_token and hmac.compare_digest(token, self._service_token):
            return SERVICE
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        record = await self.store.verify(token)
        if record is None:
            raise unauthenticated("the bearer token is not valid (unknown, malformed or revoked)")
        principal = record.principal
        self.cache.put(token, principal)
        return principal

    async def authorize(
        self, method: str, metadata: Iterable[tuple[str, str | bytes]]
    ) -> tuple[Principal, Principal]:
        """(the authenticated caller, the principal the call acts as)."""
        values = {key: value for key, value in metadata if isinstance(value, str)}
        header = values.get("authorization", "")
        if not header:
            raise unauthenticated("authorization metadata with a bearer token is required")
        if not header.lower().startswith(_BEARER):
            raise unauthenticated("authorization must be 'Bearer <token>'")
        caller = await self.caller(header[len(_BEARER) :].strip())
        if not allowed(method, caller.role):
            raise permission_denied(f"role {caller.role!r} may not call {method}")
        forwarded = values.get(ON_BEHALF_OF_METADATA)
        if forwarded is None:
            return caller, caller
        if caller.role != "service":
            raise permission_denied(
                f"{ON_BEHALF_OF_METADATA} is only honoured from a service credential"
            )
        acting = Principal.decode(forwarded)
        if acting is None:
            raise unauthenticated(f"{ON_BEHALF_OF_METADATA} is malformed")
        return caller, acting
