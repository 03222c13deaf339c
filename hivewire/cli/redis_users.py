"""`hivewire up`'s Redis users: the ACL file of its embedded Redis and each child's URL.

The users and their rules come from the services (`python -m
hivewire_services.common.redis_acl_cli`, the one place that knows the keys); their passwords
stay in `<data dir>/redis-users.json` (mode 0600), kept across runs.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

from hivewire.core.redis_users import (
    ADMIN_ROLE,
    PASSWORDS_FILE,
    SERVICE_ROLES,
    load_passwords,
    url_as,
    user_name,
)

ACL_FILE = "users.acl"
ACL_MODULE = "hivewire_services.common.redis_acl_cli"


@dataclass(frozen=True)
class RedisUsers:
    """The users of one namespace and where their files are."""

    data_dir: Path
    namespace: str
    passwords: dict[str, str]

    @property
    def aclfile(self) -> Path:
        return self.data_dir / ACL_FILE

    @classmethod
    async def prepare(cls, data_dir: Path, namespace: str) -> RedisUsers:
        """Write the ACL file (passwords made the first time), then read the passwords."""
        passwords = data_dir / PASSWORDS_FILE
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", ACL_MODULE, "--format", "aclfile", "--namespace", namespace,
            "--passwords", str(passwords), "--out", str(data_dir / ACL_FILE),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await proc.communicate()
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
            raise RuntimeError(f"could not write the Redis ACL file: {detail[0]}")
        return cls(data_dir, namespace, load_passwords(passwords))

    def url(self, base: str, role: str) -> str:
        """`base` (no user) as the user of `role`."""
        return url_as(base, user_name(self.namespace, role), self.passwords[role])

    def admin_url(self, base: str) -> str:
        return self.url(base, ADMIN_ROLE)

    def child_env(self, base: str, name: str) -> dict[str, str]:
        """A service connects as its own user (the registry also makes the agents' users);
        anything else (an agent) gets `base`, no user: the registry gives it one."""
        if name not in SERVICE_ROLES:
            return {"HIVEWIRE_REDIS_URL": base}
        env = {"HIVEWIRE_REDIS_URL": self.url(base, name)}
        if name == "registry":
            env["HIVEWIRE_AGENT_REDIS_USERS"] = "1"
        return env

    @property
    def secrets(self) -> list[str]:
        return list(self.passwords.values())


def running_admin_url(data_dir: Path, redis_addr: str, namespace: str = "hw") -> str:
    """The admin URL of the Redis `hivewire up --data-dir data_dir` runs at `redis_addr`
    (what a script or a test uses to look inside)."""
    passwords = load_passwords(data_dir.resolve() / PASSWORDS_FILE)
    admin = user_name(namespace, ADMIN_ROLE)
    return url_as(f"redis://{redis_addr}/0", admin, passwords[ADMIN_ROLE])
