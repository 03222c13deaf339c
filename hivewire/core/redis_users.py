"""Hivewire's Redis users: their names, and the file that keeps their passwords (mode 0600).

Shared by the services, which build each user's ACL rules (hivewire_services.common.redis_acl),
and the command, which writes the passwords file and hands each process its user
(`hivewire up`, `hivewire redis-acl`). docs/security.md, Redis, says who may do what.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

SERVICE_ROLES = ("registry", "coordinator", "gateway", "hooks")
ADMIN_ROLE = "admin"
"""The operator's user (every command, every key): what `redis-cli` or a backup job uses."""
ROLES = (*SERVICE_ROLES, ADMIN_ROLE)
PASSWORDS_FILE = "redis-users.json"

_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_namespace(namespace: str) -> str:
    """A namespace that can appear in ACL key patterns and user names as it is."""
    if not _NAMESPACE.fullmatch(namespace):
        raise ValueError(
            f"namespace {namespace!r}: Redis users need 1-64 of A-Z a-z 0-9 _ - "
            "(no glob characters, no '.')"
        )
    return namespace


def user_name(namespace: str, role: str) -> str:
    """`hivewire.<namespace>.<role>`: fits in a URL without escaping."""
    return f"hivewire.{check_namespace(namespace)}.{role}"


def agent_user_prefix(namespace: str) -> str:
    return f"{user_name(namespace, 'agent')}."


def agent_user_name(namespace: str, agent_id: str) -> str:
    """A direct-Redis agent's user; its password is the agent token."""
    return agent_user_prefix(namespace) + agent_id


def load_passwords(path: Path) -> dict[str, str]:
    """Role -> password, from a file written by `ensure_passwords`."""
    data = json.loads(path.read_text())
    return {role: str(data[role]) for role in ROLES if role in data}


def ensure_passwords(path: Path) -> dict[str, str]:
    """The passwords in `path`, each role missing there given a new random one; the file is
    (re)written with mode 0600 only when something was added."""
    known = load_passwords(path) if path.exists() else {}
    missing = [role for role in ROLES if role not in known]
    if missing:
        known.update({role: secrets.token_urlsafe(32) for role in missing})
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(known, f, indent=2, sort_keys=True)
        os.replace(path.with_suffix(".tmp"), path)
    os.chmod(path, 0o600)
    return known


def url_as(url: str, user: str, password: str) -> str:
    """`url` with this user and password in place of any it had."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
