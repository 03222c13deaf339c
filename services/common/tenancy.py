"""Which tenant work belongs to, and whether the current principal may see it.

A task or workflow is stored with the tenant of the principal that created it (`tenant` field
of its hash); the default tenant is stored as no tenant, like every record written before
tenants existed. Work the caller may not see is reported exactly like work that does not exist.
"""

from __future__ import annotations

import hashlib

from hivewire_services.common import principal
from hivewire_services.common.validation import check_tenant

__all__ = ["creating_tenant", "request_digest", "scope", "stored", "tenant_of", "visible"]


def stored(tenant: str) -> str:
    """The hash field value for work of `tenant`: '' for the default tenant."""
    return "" if tenant == principal.DEFAULT_TENANT else check_tenant(tenant)


def creating_tenant() -> str:
    """The stored tenant of work the current principal creates now."""
    return stored(principal.current().tenant)


def tenant_of(raw: bytes | str | int | None) -> str:
    """The tenant a stored value names (none: the default tenant)."""
    text = raw.decode() if isinstance(raw, bytes) else (str(raw) if raw else "")
    return text or principal.DEFAULT_TENANT


def visible(raw: bytes | str | None) -> bool:
    """True when the current principal sees work stored with tenant value `raw`."""
    return principal.current().sees(tenant_of(raw))


def scope() -> str | None:
    """The only tenant the current principal sees, or None when it sees every tenant."""
    who = principal.current()
    return None if who.all_tenants else who.tenant


def request_digest(tenant: str, request_id: str) -> str:
    """The request_id key's hash: request ids are scoped by tenant (the default tenant's as
    before tenants), so one tenant's request_id never yields another tenant's task."""
    scoped = f"{tenant}\0{request_id}" if tenant else request_id
    return hashlib.sha256(scoped.encode()).hexdigest()
