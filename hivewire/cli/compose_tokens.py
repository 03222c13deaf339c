"""The tokens of a compose deployment, made on the host by `hivewire secrets init` next to its
certificates: each in a file of its own (0600), and a static token file of their hashes that
the gateway imports into the token store when it starts (docs/security.md, Tokens and roles).

Files still well formed are kept, so running the command again changes nothing; delete a token's
file and run it again to replace that token (the gateway's next start drops the old one).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hivewire.cli.demo import DEMO_AGENTS
from hivewire.cli.up_auth import ADMIN, agent_token_name
from hivewire.core.api_tokens import (
    SERVICE_PREFIX,
    StaticToken,
    dump_static_tokens,
    new_service_token,
    new_token,
    token_id,
)

SERVICE_TOKEN_FILE = "service.token"
STATIC_TOKENS_FILE = "tokens.json"


def token_file(name: str) -> str:
    """The file of the named token: `admin.token`, `agent-demo-1.token`."""
    return f"{name}.token"


def compose_token_specs() -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, role, capabilities) of every token compose needs: the admin, one per demo agent."""
    agents = [(agent_token_name(a), "agent", caps) for a, caps in DEMO_AGENTS.items()]
    return [(ADMIN, "admin", ()), *agents]


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with a file only its owner may read."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


@dataclass
class _Maker:
    directory: Path
    written: list[str]

    def ensure(self, name: str, make: Callable[[], str], good: Callable[[str], bool]) -> str:
        path = self.directory / name
        try:
            current = path.read_text().strip()
        except FileNotFoundError:
            current = ""
        if current and good(current):
            return current
        token = make()
        write_private(path, token + "\n")
        self.written.append(name)
        return token


def ensure_compose_tokens(directory: Path) -> tuple[dict[str, str], list[str]]:
    """Make the missing or malformed token files in `directory` and rewrite the static token
    file from them: ({token name: token}, the files written)."""
    maker = _Maker(directory, [])
    maker.ensure(SERVICE_TOKEN_FILE, new_service_token, lambda t: t.startswith(SERVICE_PREFIX))
    tokens = {
        name: maker.ensure(token_file(name), lambda: new_token()[1], lambda t: bool(token_id(t)))
        for name, _, _ in compose_token_specs()
    }
    entries = [StaticToken.of(n, role, tokens[n], caps) for n, role, caps in compose_token_specs()]
    text = dump_static_tokens(entries)
    static = directory / STATIC_TOKENS_FILE
    if not static.exists() or static.read_text() != text:
        write_private(static, text)
        maker.written.append(STATIC_TOKENS_FILE)
    return tokens, maker.written
