"""Each service reads its own HIVEWIRE_* variables; the README documents every one of them."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from hivewire_services.common.config import CommonSettings, env_name, env_names, load_settings
from hivewire_services.coordinator.config import CoordinatorSettings, load_coordinator_settings
from hivewire_services.gateway.config import GatewaySettings, load_gateway_settings
from hivewire_services.hooks.config import HooksSettings, load_hooks_settings
from hivewire_services.registry.config import RegistrySettings, load_registry_settings
from tests.settings import SERVICE_SETTINGS

LOADERS = {
    "registry": load_registry_settings,
    "coordinator": load_coordinator_settings,
    "gateway": load_gateway_settings,
    "hooks": load_hooks_settings,
}


def test_defaults_and_parsing() -> None:
    s = load_registry_settings({"HIVEWIRE_LEASE_SECONDS": "2.5", "HIVEWIRE_REGISTRY_LISTEN": ""})
    assert s.lease_seconds == 2.5
    assert s.registry_addr == "127.0.0.1:50052"
    assert s.listen_address == "127.0.0.1:50052"
    assert load_registry_settings({"HIVEWIRE_REGISTRY_LISTEN": "0.0.0.0:1"}).listen_address == (
        "0.0.0.0:1"
    )
    assert load_gateway_settings({"HIVEWIRE_MAX_BATCH": "10"}).max_batch == 10


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_a_shared_variable_reaches_every_service(service: str) -> None:
    env = {"HIVEWIRE_REDIS_URL": "redis://elsewhere:1/2", "HIVEWIRE_SHUTDOWN_GRACE": "0.5"}
    s = LOADERS[service](env)
    assert isinstance(s, CommonSettings)
    assert (s.redis_url, s.shutdown_grace) == ("redis://elsewhere:1/2", 0.5)


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_each_service_reads_only_its_own_variables(service: str) -> None:
    """A variable meant for another service, even a malformed one, is not read."""
    own = env_names(SERVICE_SETTINGS[service])
    others = set().union(*map(env_names, SERVICE_SETTINGS.values())) - own
    assert others, "every service has variables no other service reads"
    s = LOADERS[service](dict.fromkeys(others, "not a value"))
    assert s == SERVICE_SETTINGS[service]()


def test_services_read_what_they_use() -> None:
    assert "HIVEWIRE_SCHEDULER_BATCH" in env_names(CoordinatorSettings)
    assert "HIVEWIRE_SCHEDULER_BATCH" not in env_names(GatewaySettings)
    assert "HIVEWIRE_HOOKS_CONCURRENCY" in env_names(HooksSettings)
    assert "HIVEWIRE_HOOKS_CONCURRENCY" not in env_names(RegistrySettings)
    assert "HIVEWIRE_MAX_PAYLOAD_BYTES" not in env_names(RegistrySettings)


@pytest.mark.parametrize("service", sorted(LOADERS))
def test_bad_value_names_the_variable(service: str) -> None:
    with pytest.raises(ValueError, match="HIVEWIRE_RPC_TIMEOUT='soon' is not a valid float"):
        LOADERS[service]({"HIVEWIRE_RPC_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="HIVEWIRE_LEASE_SECONDS"):
        load_registry_settings({"HIVEWIRE_LEASE_SECONDS": "long"})
    with pytest.raises(ValueError, match="HIVEWIRE_HOOKS_CONCURRENCY"):
        load_hooks_settings({"HIVEWIRE_HOOKS_CONCURRENCY": "8.5"})


def test_keyword_overrides_win_over_the_environment() -> None:
    s = load_settings(CoordinatorSettings, {"HIVEWIRE_RESULTS_BATCH": "7"}, results_batch=9)
    assert s.results_batch == 9
    with pytest.raises(TypeError):
        load_settings(RegistrySettings, {}, results_batch=9)


def test_a_field_several_services_read_has_one_default() -> None:
    defaults: dict[str, object] = {}
    for kind in SERVICE_SETTINGS.values():
        for f in fields(kind):
            assert defaults.setdefault(f.name, f.default) == f.default, f"{f.name} differs"


def test_readme_documents_every_setting(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    names = {env_name(f.name) for kind in SERVICE_SETTINGS.values() for f in fields(kind)}
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"README configuration tables lack {missing}"
