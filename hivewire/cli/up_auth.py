"""How `hivewire up` turns on tokens (under --secure, or HIVEWIRE_AUTH=tokens): a service token
for the services to call each other, an admin token for the client config, an agent token per
demo agent (docs/security.md, Tokens and roles)."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

BOOTSTRAP = "hivewire_services.common.auth.bootstrap"
ADMIN = "admin"
BOOTSTRAP_TIMEOUT = 60.0


def agent_token_name(agent: str) -> str:
    return f"agent-{agent}"


@dataclass(frozen=True)
class UpAuth:
    service_token: str = ""
    admin_token: str = ""
    agent_tokens: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.service_token)

    @classmethod
    async def prepare(
        cls, enabled: bool, env: dict[str, str], agents: Sequence[tuple[str, str]]
    ) -> UpAuth:
        """Issue the tokens in the stack's Redis (`env` names it, with an admin user)."""
        if not enabled:
            return cls()
        specs = [f"{ADMIN}:admin"]
        specs += [f"{agent_token_name(name)}:agent:{caps}" for name, caps in agents]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            BOOTSTRAP,
            *specs,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(BOOTSTRAP_TIMEOUT):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError("issuing the stack's tokens timed out") from None
        if process.returncode != 0:
            raise RuntimeError(f"could not issue the stack's tokens: {err.decode().strip()}")
        issued = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
        return cls(
            service_token="hws_" + secrets.token_hex(32),
            admin_token=issued[ADMIN],
            agent_tokens={name: issued[agent_token_name(name)] for name, _ in agents},
        )

    def service_env(self) -> dict[str, str]:
        if not self.enabled:
            return {}
        return {"HIVEWIRE_AUTH": "tokens", "HIVEWIRE_SERVICE_TOKEN": self.service_token}

    def agent_env(self, name: str) -> dict[str, str]:
        token = self.agent_tokens.get(name, "")
        return {"HIVEWIRE_TOKEN": token} if token else {}

    def client_env(self) -> dict[str, str]:
        """The client config's token line: the CLI on this machine acts as the admin."""
        return {"HIVEWIRE_TOKEN": self.admin_token} if self.admin_token else {}
