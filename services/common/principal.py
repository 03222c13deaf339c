"""Who is calling: the principal an RPC runs as, and the tenant its work belongs to.

The auth interceptor binds the caller's principal for the duration of each RPC (`acting_as`);
domain code reads it with `current()`. With authentication off (local development) every call
runs as `LOCAL`, an admin of the default tenant, so the single-user experience is unchanged.

Roles: `admin` (everything, every tenant), `client` (submit, read and change its tenant's work),
`viewer` (read its tenant's work), `agent` (the agent protocol only, for the capabilities its
token allows), `service` (one Hivewire service calling another; may act on behalf of the
principal it forwards).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

ROLES = ("admin", "client", "viewer", "agent", "service")
DEFAULT_TENANT = "default"
# Metadata a service (the gateway) sends downstream to say on whose behalf it calls; honoured
# only from a caller authenticated as role `service`.
ON_BEHALF_OF_METADATA = "x-hivewire-on-behalf-of"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str
    tenant: str = DEFAULT_TENANT
    # For agent tokens: the capabilities the agent may register (empty: any).
    capabilities: frozenset[str] = frozenset()

    @property
    def all_tenants(self) -> bool:
        """Admins and services see and change every tenant's work."""
        return self.role in ("admin", "service")

    def sees(self, tenant: str) -> bool:
        """True when this principal may see work of `tenant` (stored work without a tenant
        belongs to the default tenant). Agents are shared by every tenant and run their tasks:
        the task store lets them reach only the children they spawned, and the role table lets
        them list nothing."""
        return self.all_tenants or self.role == "agent" or (tenant or DEFAULT_TENANT) == self.tenant

    def encode(self) -> str:
        """The on-behalf-of metadata value for this principal."""
        caps = ",".join(sorted(self.capabilities))
        return f"{self.name};{self.role};{self.tenant};{caps}"

    @classmethod
    def decode(cls, value: str) -> Principal | None:
        """The principal an on-behalf-of value names, or None when it is malformed."""
        parts = value.split(";")
        if len(parts) != 4 or not parts[0] or parts[1] not in ROLES or not parts[2]:
            return None
        caps = frozenset(c for c in parts[3].split(",") if c)
        return cls(parts[0], parts[1], parts[2], caps)


LOCAL = Principal(name="local", role="admin", tenant=DEFAULT_TENANT)

_current: ContextVar[Principal] = ContextVar("hivewire_principal", default=LOCAL)


def current() -> Principal:
    """The principal the running RPC (or background job) acts as."""
    return _current.get()


def bind(principal: Principal) -> None:
    """Act as `principal` for the rest of the current context, with no reset: for a streaming
    RPC, whose handler runs in a task (and context) of its own but whose generator may be closed
    from another context."""
    _current.set(principal)


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run the block as `principal` (an RPC's caller, or a schedule's owner when it fires)."""
    token = _current.set(principal)
    try:
        yield principal
    finally:
        _current.reset(token)
