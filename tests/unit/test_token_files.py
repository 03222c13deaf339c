"""Tokens in files: HIVEWIRE_TOKEN_FILE (SDK, agents, CLI), HIVEWIRE_SERVICE_TOKEN_FILE
(services), the tokens `hivewire secrets init` makes, and the static token file's format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hivewire.cli.compose_tokens import (
    SERVICE_TOKEN_FILE,
    STATIC_TOKENS_FILE,
    compose_token_specs,
    ensure_compose_tokens,
    token_file,
)
from hivewire.core.api_tokens import parse_static_tokens, token_id, token_sha256
from hivewire.core.client_config import write_client_config
from hivewire.core.credentials import CredentialError, token_from_env
from hivewire_services.common.auth.static_tokens import load_static_tokens
from hivewire_services.common.config import CommonSettings, load_settings
from hivewire_services.common.server import check_transport
from hivewire_services.gateway.config import GatewaySettings

TOKEN = "hw_" + "a" * 32 + "_" + "b" * 64


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No token in the environment; an empty data directory of our own."""
    for name in ("HIVEWIRE_TOKEN", "HIVEWIRE_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("HIVEWIRE_DATA_DIR", str(data))
    return data


def test_the_sdk_reads_its_token_from_a_file(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "agent.token"
    path.write_text(f"  {TOKEN}\n")
    assert token_from_env() == ""
    monkeypatch.setenv("HIVEWIRE_TOKEN_FILE", str(path))
    assert token_from_env() == TOKEN
    assert token_from_env("given") == "given"
    # Both in the environment: ambiguous, refused.
    monkeypatch.setenv("HIVEWIRE_TOKEN", "other")
    with pytest.raises(CredentialError, match="set one of HIVEWIRE_TOKEN and HIVEWIRE_TOKEN_FILE"):
        token_from_env()


def test_the_environment_wins_over_the_client_config(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "admin.token"
    path.write_text(TOKEN)
    write_client_config(clean_env, {"HIVEWIRE_TOKEN_FILE": str(path)})
    assert token_from_env() == TOKEN
    monkeypatch.setenv("HIVEWIRE_TOKEN", "from-env")
    assert token_from_env() == "from-env"


@pytest.mark.parametrize("content", [None, "", " \n"])
def test_an_unreadable_or_empty_token_file_names_its_variable(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    path = tmp_path / "t.token"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("HIVEWIRE_TOKEN_FILE", str(path))
    with pytest.raises(CredentialError, match=f"HIVEWIRE_TOKEN_FILE={path}: "):
        token_from_env()


def test_services_read_the_service_token_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "service.token"
    path.write_text("hws_secret\n")
    env = {"HIVEWIRE_AUTH": "tokens", "HIVEWIRE_SERVICE_TOKEN_FILE": str(path)}
    assert load_settings(CommonSettings, env).service_credential == "hws_secret"
    assert load_settings(CommonSettings, {"HIVEWIRE_SERVICE_TOKEN": "x"}).service_credential == "x"
    both = load_settings(CommonSettings, {**env, "HIVEWIRE_SERVICE_TOKEN": "x"})
    with pytest.raises(ValueError, match="set one of"):
        check_transport("127.0.0.1:0", both)
    missing = load_settings(CommonSettings, {**env, "HIVEWIRE_SERVICE_TOKEN_FILE": "/nonexistent"})
    with pytest.raises(ValueError, match="HIVEWIRE_SERVICE_TOKEN_FILE=/nonexistent: "):
        check_transport("127.0.0.1:0", missing)


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], env={"PATH": os.environ["PATH"], **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_service_or_agent_with_an_unreadable_token_file_exits_2_with_one_line(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "missing.token")
    service = _run(
        ["-m", "hivewire_services.registry"],
        {
            "HIVEWIRE_AUTH": "tokens",
            "HIVEWIRE_SERVICE_TOKEN_FILE": missing,
            "HIVEWIRE_REGISTRY_LISTEN": "127.0.0.1:0",
            "HIVEWIRE_DATA_DIR": str(tmp_path),
        },
    )
    assert service.returncode == 2, service
    assert f"HIVEWIRE_SERVICE_TOKEN_FILE={missing}" in service.stderr + service.stdout
    assert "Traceback" not in service.stderr, service.stderr
    agent = _run(
        ["-m", "hivewire.cli.demo", "--name", "demo-1"],
        {"HIVEWIRE_TOKEN_FILE": missing, "HIVEWIRE_DATA_DIR": str(tmp_path)},
    )
    assert agent.returncode == 2, agent
    assert f"error: HIVEWIRE_TOKEN_FILE={missing}" in agent.stderr, agent.stderr
    assert "Traceback" not in agent.stderr, agent.stderr


def test_secrets_init_tokens_are_kept_and_replaced_one_by_one(tmp_path: Path) -> None:
    tokens, written = ensure_compose_tokens(tmp_path)
    names = [name for name, _, _ in compose_token_specs()]
    assert set(tokens) == set(names)
    assert set(written) == {SERVICE_TOKEN_FILE, STATIC_TOKENS_FILE, *map(token_file, names)}
    assert all(token_id(token) for token in tokens.values())
    # Again: nothing written, the same tokens.
    assert ensure_compose_tokens(tmp_path) == (tokens, [])
    # A deleted token file: that token alone is replaced, and the static file follows.
    (tmp_path / token_file("admin")).unlink()
    again, written = ensure_compose_tokens(tmp_path)
    assert written == [token_file("admin"), STATIC_TOKENS_FILE]
    assert again["admin"] != tokens["admin"]
    assert {k: v for k, v in again.items() if k != "admin"} == {
        k: v for k, v in tokens.items() if k != "admin"
    }
    entries = {e.name: e for e in load_static_tokens(str(tmp_path / STATIC_TOKENS_FILE))}
    for name, token in again.items():
        assert entries[name].id == token_id(token)
        assert entries[name].sha256 == token_sha256(token)
    assert entries["admin"].role == "admin" and entries["admin"].tenant == "admin"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("nope", "not JSON"),
        ("[]", '{"tokens"'),
        ('{"tokens": [1]}', r"tokens\[0\] is not an object"),
        ('{"tokens": [{"name": "a", "role": "admin", "id": "x", "sha256": ""}]}', "id must"),
        (
            '{"tokens": [{"name": "a", "role": "admin", "id": "' + "a" * 32 + '", "sha256": "z"}]}',
            "sha256 must",
        ),
    ],
)
def test_malformed_static_token_files_say_what_is_wrong(doc: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_static_tokens(doc)


def test_the_gateway_refuses_to_start_on_a_bad_static_token_file(tmp_path: Path) -> None:
    row = {"name": "ci", "role": "root", "id": "a" * 32, "sha256": "b" * 64}
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"tokens": [row]}))
    settings = load_settings(GatewaySettings, {"HIVEWIRE_AUTH_TOKENS_FILE": str(path)})
    with pytest.raises(ValueError, match=f"HIVEWIRE_AUTH_TOKENS_FILE={path}: role must"):
        check_transport("127.0.0.1:0", settings)
    settings = load_settings(GatewaySettings, {"HIVEWIRE_AUTH_TOKENS_FILE": str(tmp_path / "x")})
    with pytest.raises(ValueError, match="HIVEWIRE_AUTH_TOKENS_FILE="):
        check_transport("127.0.0.1:0", settings)
