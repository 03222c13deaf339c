"""`python -m hivewire_services.common.redis_acl_cli`: the services' Redis users, ready to apply.

What `hivewire redis-acl` prints and `hivewire up` gives its embedded Redis. Passwords come
from (and missing ones are added to) a 0600 JSON file; rules carry only their SHA-256.

- `--format setuser` (default): `ACL SETUSER` lines for a running Redis
  (`hivewire redis-acl | redis-cli --user <admin> --askpass`); the default user is left alone.
- `--format aclfile`: a whole ACL file (redis.conf `aclfile`): the default user off (no one can
  log in as it), an admin user for operators, one user per service.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hivewire.core.redis_users import (
    ADMIN_ROLE,
    PASSWORDS_FILE,
    SERVICE_ROLES,
    check_namespace,
    ensure_passwords,
    user_name,
)
from hivewire_services.common.config import CommonSettings, load_settings
from hivewire_services.common.redis_acl import password_hash, service_rules, user_rules

FORMATS = ("setuser", "aclfile")
ADMIN_RULES = ["~*", "&*", "+@all"]
# The default user is off and has no password, so nobody can be it; it keeps every right
# because Redis 7.0 replays the AOF's MULTI/EXEC blocks (every script's effects among them)
# with the default user's rights: without them a restart would drop those writes.
DEFAULT_USER = "user default off resetpass ~* &* +@all"


def acl_lines(
    namespace: str, passwords: dict[str, str], *, fmt: str, agent_users: bool = True
) -> list[str]:
    """Each service's user (and for an ACL file: the default user off, the admin user)."""
    users = [
        (
            user_name(namespace, role),
            user_rules(
                password_hash(passwords[role]),
                service_rules(namespace, role, agent_users=agent_users),
            ),
        )
        for role in SERVICE_ROLES
    ]
    if fmt == "setuser":
        return [" ".join(["ACL", "SETUSER", name, *rules]) for name, rules in users]
    admin = user_rules(password_hash(passwords[ADMIN_ROLE]), ADMIN_RULES)
    users.insert(0, (user_name(namespace, ADMIN_ROLE), admin))
    return [DEFAULT_USER, *(" ".join(["user", name, *rules]) for name, rules in users)]


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hivewire redis-acl", description=__doc__)
    parser.add_argument("--namespace", help="key namespace (default $HIVEWIRE_NAMESPACE or hw)")
    parser.add_argument(
        "--passwords",
        type=Path,
        default=Path(".hivewire") / PASSWORDS_FILE,
        help="JSON file of the users' passwords, created (mode 0600) or completed as needed",
    )
    parser.add_argument("--format", choices=FORMATS, default="setuser")
    parser.add_argument("--out", type=Path, help="write here (mode 0600) instead of stdout")
    parser.add_argument(
        "--no-agent-users",
        action="store_true",
        help="the registry makes no per-agent users, so it gets no ACL commands",
    )
    args = parser.parse_args(argv)
    namespace = args.namespace or load_settings(CommonSettings).namespace
    try:
        check_namespace(namespace)
        lines = acl_lines(
            namespace,
            ensure_passwords(args.passwords),
            fmt=args.format,
            agent_users=not args.no_agent_users,
        )
    except ValueError as exc:
        parser.error(str(exc))
    text = "\n".join(lines) + "\n"
    if args.out is not None:
        write_private(args.out, text)
    else:
        sys.stdout.write(text)
    sys.stderr.write(
        f"# passwords of these users: {args.passwords} (mode 0600); each service connects as "
        f"its own, e.g. HIVEWIRE_REDIS_URL=redis://{user_name(namespace, 'registry')}:"
        "<password>@<host>:<port>/0\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
