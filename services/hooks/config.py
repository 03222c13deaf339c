"""The hooks runner's environment: its settings, its hooks file, and what command hooks inherit."""

from __future__ import annotations

import os
from collections.abc import Mapping

from hivewire.core.hooks_file import HooksConfig, load_hooks
from hivewire_services.common.config import Settings


def process_environment() -> Mapping[str, str]:
    """Where `secret_env` names are looked up, and the base environment of command hooks."""
    return os.environ


def load_hooks_config(settings: Settings, env: Mapping[str, str] | None = None) -> HooksConfig:
    """The hooks of HIVEWIRE_HOOKS_FILE; no file configured means no hooks (the runner idles)."""
    if not settings.hooks_file:
        return HooksConfig()
    return load_hooks(
        settings.hooks_file,
        process_environment() if env is None else env,
        settings.hooks_max_attempts,
    )
