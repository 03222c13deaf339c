"""The hooks runner's environment: its settings, its hooks file, and what command hooks inherit."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from hivewire.core.hooks_file import HooksConfig, load_hooks
from hivewire_services.common.config import ServiceSettings


@dataclass(frozen=True)
class HooksSettings(ServiceSettings):
    """The common settings plus what the hooks runner reads; no hooks file means it idles."""

    service = "hooks"

    hooks_file: str = ""
    hooks_addr: str = "127.0.0.1:50054"
    # Where the runner serves grpc health; empty means the host:port of hooks_addr.
    hooks_listen: str = ""
    hooks_concurrency: int = 8
    hooks_max_attempts: int = 5
    hooks_retry_initial_backoff: float = 1.0
    hooks_retry_max_backoff: float = 60.0
    hooks_claim_idle: float = 30.0
    # Longest sleep of the dispatcher (it wakes for new, freed and due deliveries).
    hooks_poll_interval: float = 30.0
    hooks_max_backlog: int = 10_000


def process_environment() -> Mapping[str, str]:
    """Where `secret_env` names are looked up; command hooks get only its allowlisted part."""
    return os.environ


load_hooks_settings = HooksSettings.load


def load_hooks_config(settings: HooksSettings, env: Mapping[str, str] | None = None) -> HooksConfig:
    """The hooks of HIVEWIRE_HOOKS_FILE; no file configured means no hooks (the runner idles)."""
    if not settings.hooks_file:
        return HooksConfig()
    return load_hooks(
        settings.hooks_file,
        process_environment() if env is None else env,
        settings.hooks_max_attempts,
    )
