"""The API token format and the static token file, shared by the services (which verify and
import tokens) and the CLI (which makes a deployment's tokens before any service runs).

A token is `hw_<id>_<secret>`: 128 random bits of id, 256 of secret. Only its SHA-256 is
stored. The static token file (HIVEWIRE_AUTH_TOKENS_FILE, docs/security.md) lists named tokens
by id and hash, never the secret: `{"tokens": [{"name", "role", "tenant", "capabilities", "id",
"sha256"}, ...]}`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import asdict, dataclass

PREFIX = "hw_"
SERVICE_PREFIX = "hws_"
TOKEN_PATTERN = re.compile(r"hw_([0-9a-f]{32})_([0-9a-f]{64})")
_HEX = re.compile(r"[0-9a-f]+")


def new_token() -> tuple[str, str]:
    """A fresh (id, token)."""
    token_id = uuid.uuid4().hex
    return token_id, f"{PREFIX}{token_id}_{secrets.token_hex(32)}"


def new_service_token() -> str:
    """A fresh service credential (HIVEWIRE_SERVICE_TOKEN): the services' shared secret."""
    return SERVICE_PREFIX + secrets.token_hex(32)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str | None:
    """The id inside a well-formed token, else None."""
    match = TOKEN_PATTERN.fullmatch(token)
    return match.group(1) if match else None


@dataclass(frozen=True)
class StaticToken:
    """One entry of a static token file: what the token store keeps of a token."""

    name: str
    role: str
    id: str
    sha256: str
    tenant: str = ""  # empty: the name, as for a token made by the API
    capabilities: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, name: str, role: str, token: str, capabilities: tuple[str, ...] = ()
    ) -> StaticToken:
        found = token_id(token)
        if found is None:
            raise ValueError(f"the token of {name!r} is not a well-formed {PREFIX} token")
        return cls(name, role, found, token_sha256(token), "", capabilities)


def dump_static_tokens(entries: list[StaticToken]) -> str:
    rows = [{**asdict(e), "capabilities": list(e.capabilities)} for e in entries]
    return json.dumps({"tokens": rows}, indent=2) + "\n"


def parse_static_tokens(text: str) -> list[StaticToken]:
    """The entries of a static token file (ValueError saying what is wrong; the services check
    names, roles and capabilities as for any token)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    rows = doc.get("tokens") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise ValueError('must be {"tokens": [...]}')
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"tokens[{i}] is not an object")
        strings = {k: row.get(k, "") for k in ("name", "role", "id", "sha256", "tenant")}
        caps = row.get("capabilities", [])
        if not all(isinstance(v, str) for v in strings.values()):
            raise ValueError(f"tokens[{i}]: name, role, id, sha256 and tenant must be strings")
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            raise ValueError(f"tokens[{i}].capabilities must be a list of strings")
        if len(strings["id"]) != 32 or not _HEX.fullmatch(strings["id"]):
            raise ValueError(f"tokens[{i}].id must be 32 lowercase hex digits")
        if len(strings["sha256"]) != 64 or not _HEX.fullmatch(strings["sha256"]):
            raise ValueError(f"tokens[{i}].sha256 must be 64 lowercase hex digits")
        out.append(StaticToken(**strings, capabilities=tuple(caps)))
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise ValueError("a name appears more than once")
    return out
