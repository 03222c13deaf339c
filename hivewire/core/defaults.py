"""Defaults every SDK part shares: addresses, HIVEWIRE_* lookups, gRPC channel options."""

from __future__ import annotations

import os

from hivewire.core.client_config import read_client_config

DEFAULT_GATEWAY_ADDR = "127.0.0.1:50051"
DEFAULT_REGISTRY_ADDR = "127.0.0.1:50052"
DEFAULT_COORDINATOR_ADDR = "127.0.0.1:50053"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6390/0"
MAX_MESSAGE_BYTES = 8 * 1024 * 1024


def env(name: str, default: str) -> str:
    """`HIVEWIRE_<NAME>` from the environment, else `default` (empty counts as unset)."""
    return os.environ.get(f"HIVEWIRE_{name}") or default


def client_setting(name: str, default: str) -> str:
    """What a client uses to reach the stack: `HIVEWIRE_<NAME>` from the environment, else from
    the client config `hivewire up` wrote in the data directory, else `default`."""
    key = f"HIVEWIRE_{name}"
    return os.environ.get(key) or read_client_config().get(key) or default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(f"HIVEWIRE_{name}")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"HIVEWIRE_{name}={raw!r} is not a number") from exc


def channel_options() -> list[tuple[str, int]]:
    """Keepalive and size limits for the SDK's long-lived channels."""
    return [
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
