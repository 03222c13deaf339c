"""One settings object for in-process test stacks, narrowed to each service's own settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TypeVar

from hivewire_services.common.config import CommonSettings, load_settings
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.gateway.config import GatewaySettings
from hivewire_services.hooks.config import HooksSettings
from hivewire_services.registry.config import RegistrySettings

ServiceSettingsT = TypeVar("ServiceSettingsT", bound=CommonSettings)

SERVICE_SETTINGS: dict[str, type[CommonSettings]] = {
    "registry": RegistrySettings,
    "coordinator": CoordinatorSettings,
    "gateway": GatewaySettings,
    "hooks": HooksSettings,
}


@dataclass(frozen=True)
class StackSettings(RegistrySettings, CoordinatorSettings, GatewaySettings, HooksSettings):
    """Every service's fields, like the one environment docker-compose gives the whole stack.

    Domain objects accept it as their service's settings; servers get `.registry()` etc., so each
    listens where its own settings say.
    """

    @property
    def listen_address(self) -> str:
        raise AttributeError("narrow StackSettings with .registry(), .coordinator(), ... first")

    def narrow(self, kind: type[ServiceSettingsT]) -> ServiceSettingsT:
        return kind(**{f.name: getattr(self, f.name) for f in fields(kind)})

    def registry(self) -> RegistrySettings:
        return self.narrow(RegistrySettings)

    def coordinator(self) -> CoordinatorSettings:
        return self.narrow(CoordinatorSettings)

    def gateway(self) -> GatewaySettings:
        return self.narrow(GatewaySettings)

    def hooks(self) -> HooksSettings:
        return self.narrow(HooksSettings)


def stack_settings(env: Mapping[str, str] | None = None, **overrides: object) -> StackSettings:
    """StackSettings from `env` (default: none, so the caller's environment never leaks in)."""
    return load_settings(StackSettings, {} if env is None else env, **overrides)
