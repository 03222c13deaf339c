"""TLS settings (SDK and services), the plaintext-bind rule, and the discovered client config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hivewire.core.client_config import read_client_config, write_client_config
from hivewire.core.defaults import client_setting
from hivewire.core.tls import (
    PLAINTEXT,
    PlaintextBindError,
    TlsConfig,
    TlsError,
    check_plaintext_bind,
    is_loopback,
    tls_env,
    tls_from_env,
)
from hivewire_services.common.config import CommonSettings, load_settings


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cert": "c.pem"}, "HIVEWIRE_TLS_CERT is set without HIVEWIRE_TLS_KEY"),
        ({"key": "k.pem"}, "HIVEWIRE_TLS_KEY is set without HIVEWIRE_TLS_CERT"),
        ({"client_auth": "maybe"}, "HIVEWIRE_TLS_CLIENT_AUTH='maybe' is not one of"),
        ({"cert": "c", "key": "k", "client_auth": "require"}, "needs HIVEWIRE_TLS_CA"),
        ({"ca": "ca.pem", "client_auth": "require"}, "a server certificate"),
    ],
)
def test_settings_that_cannot_work_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(TlsError, match=message):
        TlsConfig(**fields)


def test_an_unreadable_file_names_its_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(TlsError, match=f"HIVEWIRE_TLS_CA={missing}: No such file"):
        TlsConfig(ca=str(missing)).channel_credentials()
    assert PLAINTEXT.channel_credentials() is None and PLAINTEXT.server_credentials() is None


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [
        ("127.0.0.1:50051", True),
        ("127.8.9.1:0", True),
        ("localhost:50051", True),
        ("[::1]:50051", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        (":50051", False),
        ("10.0.0.5:50051", False),
        ("gateway:50051", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_plaintext_off_loopback_needs_an_explicit_allowance() -> None:
    with pytest.raises(PlaintextBindError, match=r"0\.0\.0\.0:1 without TLS.*HIVEWIRE_INSECURE=1"):
        check_plaintext_bind("0.0.0.0:1", PLAINTEXT, insecure=False, allow="HIVEWIRE_INSECURE=1")
    check_plaintext_bind("0.0.0.0:1", PLAINTEXT, insecure=True, allow="")
    check_plaintext_bind("127.0.0.1:1", PLAINTEXT, insecure=False, allow="")
    check_plaintext_bind("0.0.0.0:1", TlsConfig(cert="c", key="k"), insecure=False, allow="")


def test_services_read_tls_and_insecure_from_their_variables() -> None:
    env = {
        "HIVEWIRE_TLS_CERT": "/s.pem",
        "HIVEWIRE_TLS_KEY": "/s-key.pem",
        "HIVEWIRE_TLS_CA": "/ca.pem",
        "HIVEWIRE_TLS_CLIENT_AUTH": "require",
        "HIVEWIRE_INSECURE": "true",
    }
    settings = load_settings(CommonSettings, env)
    assert settings.tls == TlsConfig("/s.pem", "/s-key.pem", "/ca.pem", "require")
    assert settings.insecure is True
    assert load_settings(CommonSettings, {"HIVEWIRE_INSECURE": "0"}).insecure is False
    with pytest.raises(ValueError, match="HIVEWIRE_INSECURE='sometimes' is not a valid bool"):
        load_settings(CommonSettings, {"HIVEWIRE_INSECURE": "sometimes"})


def test_clients_find_the_config_up_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tls = TlsConfig("/c.pem", "/c-key.pem", "/ca.pem")
    data = tmp_path / ".hivewire"
    data.mkdir()
    path = write_client_config(data, {"HIVEWIRE_GATEWAY_ADDR": "127.0.0.1:7", **tls_env(tls)})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_client_config(path)["HIVEWIRE_GATEWAY_ADDR"] == "127.0.0.1:7"
    monkeypatch.delenv("HIVEWIRE_DATA_DIR")
    monkeypatch.chdir(tmp_path)  # .hivewire in the current directory
    assert client_setting("GATEWAY_ADDR", "default") == "127.0.0.1:7"
    assert tls_from_env() == tls
    assert tls_from_env(discover=False) == PLAINTEXT
    monkeypatch.setenv("HIVEWIRE_GATEWAY_ADDR", "127.0.0.1:8")  # the environment wins
    assert client_setting("GATEWAY_ADDR", "default") == "127.0.0.1:8"
    monkeypatch.chdir(tmp_path.parent)
    assert tls_from_env() == PLAINTEXT
    monkeypatch.setenv("HIVEWIRE_DATA_DIR", str(data))  # or wherever HIVEWIRE_DATA_DIR says
    assert tls_from_env() == tls
