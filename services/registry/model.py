"""Pure mapping of the agent hash to hivewire.v1.Agent; ListAgents filters and page tokens."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from hivewire.core.clock import set_ms
from hivewire.v1 import agent_pb2
from hivewire_services.common.errors import InvalidArgument

_INT32_MAX = 2**31 - 1
_PAGE_TOKEN_PREFIX = "agents:"
_OFFLINE_GROUP = "offline:"


def _text(fields: Mapping[bytes, bytes], name: bytes) -> str:
    return fields.get(name, b"").decode("utf-8", "replace")


def _int(fields: Mapping[bytes, bytes], name: bytes) -> int:
    raw = fields.get(name)
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        return 0


def parse_load(raw: bytes | str | int | None) -> int:
    """An agent_load value as a non-negative int32 (missing or malformed counts as 0)."""
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError:
        return 0
    return max(0, min(value, _INT32_MAX))


def agent_from_hash(
    agent_id: str, fields: Mapping[bytes, bytes], in_flight: int = 0
) -> agent_pb2.Agent:
    """The Agent stored in hash `fields` (the agent layout); `in_flight` comes from agent_load."""
    capabilities = _text(fields, b"capabilities")
    try:
        labels = json.loads(fields.get(b"labels") or b"{}")
    except ValueError:
        labels = {}
    if not isinstance(labels, dict):
        labels = {}
    agent = agent_pb2.Agent(
        agent_id=agent_id,
        name=_text(fields, b"name"),
        capabilities=[c for c in capabilities.split(",") if c],
        max_concurrency=_int(fields, b"max_concurrency"),
        labels={str(k): str(v) for k, v in labels.items()},
        state=_int(fields, b"state"),  # type: ignore[arg-type]
        in_flight=max(0, min(in_flight, _INT32_MAX)),
        principal=_text(fields, b"owner"),
    )
    for field, name in (
        ("register_time", b"register_ms"),
        ("last_heartbeat_time", b"heartbeat_ms"),
        ("lease_expire_time", b"lease_expire_ms"),
    ):
        set_ms(agent, field, _int(fields, name))
    return agent


def encode_labels(labels: Mapping[str, str]) -> str:
    """Labels as stored: a compact JSON object with sorted keys."""
    return json.dumps(dict(labels), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class PagePosition:
    """Where a ListAgents page starts: in the live group after registration sequence `after`,
    or in the offline group below offline score `after` (0: from the start of the group)."""

    offline: bool = False
    after: int = 0


@dataclass(frozen=True)
class AgentQuery:
    """The filters of a ListAgents request (already validated)."""

    capability: str = ""
    state: int = agent_pb2.AGENT_STATE_UNSPECIFIED
    include_offline: bool = False

    @property
    def wants_live(self) -> bool:
        return self.state != agent_pb2.AGENT_STATE_OFFLINE

    @property
    def wants_offline(self) -> bool:
        """An explicit OFFLINE state filter lists them with or without include_offline."""
        if self.state == agent_pb2.AGENT_STATE_OFFLINE:
            return True
        return self.include_offline and self.state == agent_pb2.AGENT_STATE_UNSPECIFIED

    @property
    def narrows(self) -> bool:
        return bool(self.capability or self.state)

    def matches(self, agent: agent_pb2.Agent) -> bool:
        if self.capability and self.capability not in agent.capabilities:
            return False
        return not self.state or agent.state == self.state


def encode_page_token(position: PagePosition) -> str:
    """An opaque token for `position` (a live one reads as before: `agents:<seq>`)."""
    group = _OFFLINE_GROUP if position.offline else ""
    raw = f"{_PAGE_TOKEN_PREFIX}{group}{position.after}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_page_token(token: str, field: str = "page_token") -> PagePosition:
    """The position of an encoded page token; the first page for an empty token."""
    if not token:
        return PagePosition()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidArgument(f"{field} is not a valid page token", field=field) from None
    rest = raw.removeprefix(_PAGE_TOKEN_PREFIX)
    digits = rest.removeprefix(_OFFLINE_GROUP)
    valid = digits.isascii() and digits.isdigit() and len(digits) <= 18
    if not raw.startswith(_PAGE_TOKEN_PREFIX) or not valid:
        raise InvalidArgument(f"{field} is not a valid page token", field=field)
    return PagePosition(offline=rest != digits, after=int(digits))
