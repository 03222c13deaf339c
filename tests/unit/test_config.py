"""Settings come from HIVEWIRE_* variables; the README documents every one of them."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from hivewire_services.common.config import Settings, env_name, load_settings


def test_defaults_and_parsing() -> None:
    s = load_settings(env={"HIVEWIRE_LEASE_SECONDS": "2.5", "HIVEWIRE_MAX_BATCH": "10"})
    assert s.lease_seconds == 2.5
    assert s.max_batch == 10
    assert s.gateway_addr == "127.0.0.1:50051"
    assert s.listen("registry") == "127.0.0.1:50052"
    assert (
        load_settings(env={"HIVEWIRE_REGISTRY_LISTEN": "0.0.0.0:1"}).listen("registry")
        == "0.0.0.0:1"
    )


def test_bad_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="HIVEWIRE_MAX_BATCH"):
        load_settings(env={"HIVEWIRE_MAX_BATCH": "many"})


def test_readme_documents_every_setting(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    missing = [env_name(f.name) for f in fields(Settings) if f"`{env_name(f.name)}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
