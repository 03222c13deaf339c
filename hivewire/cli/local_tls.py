"""`hivewire up --secure`'s local CA: a CA, a server certificate for every service and a client
certificate for the CLI and agents, kept in `<data dir>/tls/` and reused while they are good.

A file that is missing, unreadable, expiring within 30 days, not signed by the CA or (the
server's) without a requested host name is made anew; a new CA makes both certificates anew.
Private keys are written readable by the owner only. The server certificate also serves as a
client certificate: the services present it when they dial each other under mTLS.

The certificates are made and checked in local_ca.py, imported only then: the cryptography
package costs every process that imports the CLI about 12 MB (each `hivewire agent` among them).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hivewire.core.tls import CLIENT_AUTH_REQUIRE, TlsConfig

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalTls:
    """The files of the local CA in `directory`."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca(self) -> Path:
        return self.path("ca.pem")

    def server(self) -> TlsConfig:
        """What the services run with: their certificate, the CA, client certificates required."""
        return TlsConfig(
            str(self.path("server.pem")),
            str(self.path("server-key.pem")),
            str(self.ca),
            CLIENT_AUTH_REQUIRE,
        )

    def client(self) -> TlsConfig:
        """What the CLI, the SDKs and the agents dial with."""
        return TlsConfig(
            str(self.path("client.pem")), str(self.path("client-key.pem")), str(self.ca)
        )


def ensure_local_tls(
    directory: Path, hosts: Sequence[str] = (), *, now: datetime.datetime | None = None
) -> tuple[LocalTls, list[str]]:
    """The local CA in `directory`, with the server certificate naming the loopback names and
    `hosts`; made or renewed where needed (as of `now`). Also the names of the files written."""
    from hivewire.cli.local_ca import ensure_certificates  # cryptography: only when used

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = LocalTls(directory)
    now = now or datetime.datetime.now(datetime.UTC)
    return files, ensure_certificates(directory, [*LOOPBACK_HOSTS, *hosts], now)
