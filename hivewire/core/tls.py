"""Transport security, written once for the SDK and the services: TLS settings, server and
channel credentials, and the rule that plaintext listens only on loopback.

A server serves TLS when it has a certificate and key, and with `client_auth="require"` accepts
only clients whose certificate the CA signed (mTLS). A client dials TLS when it has a CA (or a
certificate of its own); it verifies the server against the CA, and presents its certificate
when it has one. The variables are HIVEWIRE_TLS_CERT, _KEY, _CA and _CLIENT_AUTH
(docs/security.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from hivewire.core.credentials import bearer_interceptors
from hivewire.core.defaults import client_setting, env

CLIENT_AUTH_REQUIRE = "require"
CLIENT_AUTH_VALUES = ("", "none", CLIENT_AUTH_REQUIRE)
# What each field is set by, for error messages.
VARIABLES = {
    "cert": "HIVEWIRE_TLS_CERT",
    "key": "HIVEWIRE_TLS_KEY",
    "ca": "HIVEWIRE_TLS_CA",
    "client_auth": "HIVEWIRE_TLS_CLIENT_AUTH",
}


class TlsError(ValueError):
    """TLS settings that cannot work: a missing half, an unreadable file, an unknown value."""


class PlaintextBindError(ValueError):
    """A server asked to listen in plaintext on an address other machines can reach."""


@dataclass(frozen=True)
class TlsConfig:
    """Paths of PEM files; all empty is plaintext (`PLAINTEXT`)."""

    cert: str = ""
    key: str = ""
    ca: str = ""
    client_auth: str = ""

    def __post_init__(self) -> None:
        if bool(self.cert) != bool(self.key):
            have, missing = ("cert", "key") if self.cert else ("key", "cert")
            raise TlsError(f"{VARIABLES[have]} is set without {VARIABLES[missing]}")
        if self.client_auth.lower() not in CLIENT_AUTH_VALUES:
            raise TlsError(
                f"{VARIABLES['client_auth']}={self.client_auth!r} is not one of "
                f"{', '.join(repr(v) for v in CLIENT_AUTH_VALUES)}"
            )
        if self.requires_client_cert and not (self.ca and self.cert):
            raise TlsError(
                f"{VARIABLES['client_auth']}={CLIENT_AUTH_REQUIRE} needs {VARIABLES['ca']} (to "
                f"verify client certificates) and a server certificate ({VARIABLES['cert']})"
            )

    @property
    def serves_tls(self) -> bool:
        """A server with these settings serves TLS (it has a certificate)."""
        return bool(self.cert)

    @property
    def dials_tls(self) -> bool:
        """A client with these settings dials TLS (it has a CA or a certificate)."""
        return bool(self.ca or self.cert)

    @property
    def requires_client_cert(self) -> bool:
        return self.client_auth.lower() == CLIENT_AUTH_REQUIRE

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """Credentials for `add_secure_port`; None when the server is plaintext."""
        if not self.serves_tls:
            return None
        return grpc.ssl_server_credentials(
            [(self._read("key"), self._read("cert"))],
            root_certificates=self._read("ca") if self.requires_client_cert else None,
            require_client_auth=self.requires_client_cert,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials for a secure channel; None when the client dials plaintext. Without a CA
        the server is verified against the system's roots."""
        if not self.dials_tls:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self._read("ca") if self.ca else None,
            private_key=self._read("key") if self.key else None,
            certificate_chain=self._read("cert") if self.cert else None,
        )

    def _read(self, field: str) -> bytes:
        path = getattr(self, field)
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise TlsError(f"{VARIABLES[field]}={path}: {exc.strerror or exc}") from exc


PLAINTEXT = TlsConfig()


def tls_from_env(*, discover: bool = True) -> TlsConfig:
    """The SDK's TLS settings: HIVEWIRE_TLS_* from the environment, else (with `discover`) from
    the client config `hivewire up --secure` wrote (hivewire.core.client_config)."""
    lookup = client_setting if discover else env
    return TlsConfig(
        **{field: lookup(var.removeprefix("HIVEWIRE_"), "") for field, var in VARIABLES.items()}
    )


def aio_channel(
    addr: str,
    tls: TlsConfig,
    *,
    options: Sequence[tuple[str, Any]] | None = None,
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
    token: str = "",
) -> grpc.aio.Channel:
    """A grpc.aio channel to `addr`, secure when `tls` dials TLS; with `token`, every call sends
    it as `authorization: Bearer <token>`."""
    interceptors = [*(interceptors or ()), *bearer_interceptors(token)]
    credentials = tls.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(addr, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(addr, credentials, options=options, interceptors=interceptors)


def sync_channel(addr: str, tls: TlsConfig) -> grpc.Channel:
    """A blocking channel to `addr` (the health probe's), secure when `tls` dials TLS."""
    credentials = tls.channel_credentials()
    if credentials is None:
        return grpc.insecure_channel(addr)
    return grpc.secure_channel(addr, credentials)


def bind(server: grpc.aio.Server, listen: str, tls: TlsConfig) -> int:
    """Add the listening port, TLS when `tls` serves it; the bound port (0: not bound)."""
    credentials = tls.server_credentials()
    if credentials is None:
        return int(server.add_insecure_port(listen))
    return int(server.add_secure_port(listen, credentials))


def is_loopback(listen: str) -> bool:
    """Whether `host:port` binds only the loopback interface (127.0.0.0/8, ::1, localhost).
    An empty host, 0.0.0.0, [::] and any other name or address are reachable from elsewhere."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext_bind(
    listen: str, tls: TlsConfig, *, insecure: bool, allow: str, secure: str = ""
) -> None:
    """PlaintextBindError unless the server at `listen` serves TLS, listens on loopback only, or
    plaintext was allowed explicitly. The message names the ways out: `secure` first (another
    way to get TLS, if any), then TLS variables, loopback, and `allow` (how to allow plaintext).
    """
    if tls.serves_tls or insecure or is_loopback(listen):
        return
    raise PlaintextBindError(
        f"refusing to listen on {listen} without TLS: other machines can reach it; "
        f"{secure}set {VARIABLES['cert']} and {VARIABLES['key']} (docs/security.md), listen on "
        f"127.0.0.1, or allow plaintext explicitly with {allow}"
    )


def tls_env(tls: TlsConfig) -> dict[str, str]:
    """The HIVEWIRE_TLS_* variables that give a process `tls` (the inverse of tls_from_env)."""
    return {var: getattr(tls, field) for field, var in VARIABLES.items() if getattr(tls, field)}
