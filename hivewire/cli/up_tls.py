"""How `hivewire up` secures its children: the local CA under --secure, else what its own
HIVEWIRE_TLS_* variables say (the children inherit them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hivewire.cli.local_tls import LocalTls, ensure_local_tls
from hivewire.core.tls import PLAINTEXT, TlsConfig, tls_env, tls_from_env


@dataclass(frozen=True)
class UpTls:
    local: LocalTls | None = None
    dial: TlsConfig = PLAINTEXT
    """How `up` itself dials its children (readiness checks)."""

    @classmethod
    def prepare(cls, secure: bool, data_dir: Path, hosts: Sequence[str]) -> tuple[UpTls, str]:
        """The TLS of a stack in `data_dir`, and a line to tell the user ('' for none)."""
        if not secure:
            return cls(dial=tls_from_env(discover=False)), ""
        local, written = ensure_local_tls(data_dir / "tls", hosts)
        made = f"made {', '.join(written)}" if written else "reused"
        return cls(
            local, local.client()
        ), f"TLS with client certificates: {local.directory} ({made})"

    def child_env(self, *, agent: bool) -> dict[str, str]:
        """Under --secure: a service's certificate (client certificates required), or an
        agent's client certificate."""
        if self.local is None:
            return {}
        return tls_env(self.local.client() if agent else self.local.server())

    def client_env(self) -> dict[str, str]:
        """The TLS lines of the client config (the client certificate under --secure)."""
        return {} if self.local is None else tls_env(self.local.client())
