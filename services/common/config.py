"""Configuration shared by every service: the HIVEWIRE_* loader and the common settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar, Self, TypeVar

from hivewire.core.credentials import read_token_file
from hivewire.core.tls import TlsConfig

ENV_PREFIX = "HIVEWIRE_"
AUTH_MODES = ("", "off", "tokens")


@dataclass(frozen=True)
class CommonSettings:
    """What every service reads; a service's settings class extends it with its own fields.

    Field `x_y` is read from `HIVEWIRE_X_Y`; every field has a safe default.
    """

    redis_url: str = "redis://127.0.0.1:6390/0"
    namespace: str = "hw"
    log_level: str = "INFO"
    log_format: str = "text"
    rpc_timeout: float = 5.0
    shutdown_grace: float = 5.0
    max_message_bytes: int = 8 * 1024 * 1024
    # Unary RPCs a gRPC server runs at once, and long-lived streams it keeps open, each bound
    # on its own (health and reflection never count); more are refused with RESOURCE_EXHAUSTED
    # and a RetryInfo instead of queueing without bound (docs/security.md#load-shedding).
    max_concurrent_rpcs: int = 1000
    max_concurrent_streams: int = 1000
    # Streams one caller (principal, or IP address without authentication) keeps open on one
    # process at once (0: no cap).
    max_streams_per_principal: int = 100
    # Every service that appends to the one events stream trims it to the same length.
    events_maxlen: int = 200_000
    # Address the Prometheus /metrics endpoint of each service binds.
    metrics_host: str = "127.0.0.1"
    # Redis reachability probe of every service (health NOT_SERVING and fail-fast RPCs).
    redis_probe_interval: float = 1.0
    redis_probe_timeout: float = 1.0
    # Once serving, the process writes the address it bound (host:port) to this file, so a
    # parent can start it on port 0 and still find it.
    addr_file: str = ""
    # Transport security (docs/security.md): this process's certificate and key (served, and
    # presented to the services it dials), the CA that verifies peers, "require" for mTLS.
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_client_auth: str = ""
    # Allow plaintext gRPC, or no authentication, on an address other machines reach.
    insecure: bool = False
    # Authentication (docs/security.md, Tokens and roles): "tokens" requires a bearer token on
    # every call but health and reflection; "" (the default) or "off" runs every call as the
    # local admin, for a stack on loopback only.
    auth: str = ""
    # The credential the services present to each other (role service); `hivewire up` makes it.
    # Or the file holding it (compose mounts one, so the secret is in no environment value).
    service_token: str = ""
    service_token_file: str = ""
    # How long a server trusts a token it verified before reading its record again: the most a
    # revoke takes to reach every server.
    auth_cache_seconds: float = 2.0

    @property
    def auth_enabled(self) -> bool:
        """True for HIVEWIRE_AUTH=tokens (ValueError for a value that is not a mode)."""
        mode = self.auth.strip().lower()
        if mode not in AUTH_MODES:
            raise ValueError(
                f"{env_name('auth')}={self.auth!r} must be one of {', '.join(AUTH_MODES[1:])}"
            )
        return mode == "tokens"

    @cached_property
    def service_credential(self) -> str:
        """HIVEWIRE_SERVICE_TOKEN, else what HIVEWIRE_SERVICE_TOKEN_FILE holds ("" for neither;
        ValueError naming the variable for both, or for a file that cannot be read)."""
        if self.service_token and self.service_token_file:
            raise ValueError(
                f"set one of {env_name('service_token')} and {env_name('service_token_file')}"
            )
        if not self.service_token_file:
            return self.service_token
        return read_token_file(self.service_token_file, env_name("service_token_file"))

    def check_files(self) -> None:
        """Raise ValueError unless the secrets the settings name (besides TLS) can be read."""
        if self.auth_enabled:
            _ = self.service_credential

    def rate_limit(self) -> tuple[float, int]:
        """Calls a second one caller may make on this process and its burst (0: no limit).
        Internal services have none: their one caller is the gateway; it has its own."""
        return 0.0, 0

    @property
    def tls(self) -> TlsConfig:
        """The TLS settings (TlsError when they cannot work together)."""
        return TlsConfig(self.tls_cert, self.tls_key, self.tls_ca, self.tls_client_auth)


@dataclass(frozen=True)
class SubmissionSettings(CommonSettings):
    """Limits of task and workflow submissions, checked by the gateway and the coordinator."""

    max_payload_bytes: int = 1024 * 1024
    max_batch: int = 1000
    default_max_attempts: int = 3
    workflow_max_steps: int = 500
    # Dependencies of one workflow in all (every depends_on entry, and map_over).
    workflow_max_edges: int = 10_000


@dataclass(frozen=True)
class ServiceSettings(CommonSettings):
    """The settings of a service that listens: at `<service>_listen`, else at `<service>_addr`."""

    service: ClassVar[str]

    @property
    def listen_address(self) -> str:
        listen = str(getattr(self, f"{self.service}_listen"))
        return listen or str(getattr(self, f"{self.service}_addr"))

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Self:
        """The settings from HIVEWIRE_* variables (of the process, or `env`)."""
        return load_settings(cls, env)


# Fields several services read, declared once each so they cannot drift apart.


@dataclass(frozen=True)
class RegistryAddress:
    registry_addr: str = "127.0.0.1:50052"


@dataclass(frozen=True)
class CoordinatorAddress:
    coordinator_addr: str = "127.0.0.1:50053"


@dataclass(frozen=True)
class AgentLeases:
    """The leases the registry grants and the coordinator enforces."""

    # Agent lease: an agent silent this long is offline (half of it is the Redis outage grace).
    lease_seconds: float = 15.0
    task_lease_seconds: float = 30.0


@dataclass(frozen=True)
class TaskPathSettings(CoordinatorAddress, RegistryAddress, SubmissionSettings, ServiceSettings):
    """The gateway's and the coordinator's: submission limits, where the coordinator and the
    registry are."""


@dataclass(frozen=True)
class StreamQueues:
    # The bounded queue of each subscriber of a server stream (events, agent changes).
    stream_queue_size: int = 1024


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


def env_name(field_name: str) -> str:
    """The environment variable that sets a settings field."""
    return ENV_PREFIX + field_name.upper()


def env_names(kind: type[CommonSettings]) -> set[str]:
    """Every environment variable a settings class reads."""
    return {env_name(f.name) for f in fields(kind)}


def load_settings(
    kind: type[SettingsT], env: Mapping[str, str] | None = None, **overrides: object
) -> SettingsT:
    """Read a settings dataclass from the environment (or `env`), then apply keyword overrides.

    Each value is coerced to the type of its field's default; a bad value names its variable.
    """
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    for f in fields(kind):
        raw = source.get(env_name(f.name))
        if raw is None or raw == "":
            continue
        # Every field has a str, int, float or bool default.
        coerce: Any = _parse_bool if isinstance(f.default, bool) else type(f.default)
        try:
            values[f.name] = coerce(raw)
        except ValueError as exc:
            raise ValueError(
                f"{env_name(f.name)}={raw!r} is not a valid {type(f.default).__name__}"
            ) from exc
    values.update(overrides)
    return kind(**values)  # type: ignore[arg-type]


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
