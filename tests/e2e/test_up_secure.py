"""`hivewire up --secure` as a real process tree: a local CA, mTLS everywhere, and a CLI run in
the same directory that needs no TLS flags; plaintext off loopback only with --insecure."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hivewire.cli.readiness import up_command
from hivewire.core.healthprobe import probe
from tests.e2e.conftest import hivewire_up

pytestmark = pytest.mark.e2e

TLS_FILES = ["ca.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"]


def clean_env() -> dict[str, str]:
    """This process's environment without anything that points clients at a stack: what a user
    who just ran `hivewire up` in a directory has."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("HIVEWIRE_TLS_", "HIVEWIRE_DATA_DIR", "HIVEWIRE_GATEWAY_ADDR", "HIVEWIRE_TOKEN")
        )
    }


def hivewire(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivewire.cli", *args],
        cwd=cwd, env={**clean_env(), **env}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_up_secure_serves_mtls_and_the_cli_here_finds_it(tmp_path: Path) -> None:
    data = tmp_path / ".hivewire"  # the default data directory of a CLI run in tmp_path
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with hivewire_up(data, clean_env(), args=("--secure", "--demo"), gateway_addr="0.0.0.0:0") as s:
        assert "made ca.pem, ca-key.pem, server.pem" in s.log()
        for name in TLS_FILES:
            mode = stat.S_IMODE((data / "tls" / name).stat().st_mode)
            assert mode == (0o600 if name.endswith("-key.pem") else 0o644), (name, oct(mode))
        assert stat.S_IMODE((data / "client.env").stat().st_mode) == 0o600

        agents = hivewire(tmp_path, "agents")  # the demo agents registered over mTLS
        assert agents.returncode == 0, agents.stderr
        assert "demo-1" in agents.stdout and "demo-2" in agents.stdout
        assert agents.stdout.count("ONLINE") == 2, agents.stdout
        done = hivewire(tmp_path, "submit", "echo", "--payload", '{"over": "mTLS"}', "--wait")
        assert done.returncode == 0, done.stderr
        assert "SUCCEEDED" in done.stdout and '{"over": "mTLS"}' in done.stdout
        assert hivewire(tmp_path, "healthcheck", s.gateway).returncode == 0

        # Tokens are on: the client config holds an admin token; a bad one is refused.
        assert "HIVEWIRE_TOKEN=hw_" in (data / "client.env").read_text()
        made = hivewire(tmp_path, "token", "create", "--role", "viewer", "--name", "dash")
        assert made.returncode == 0, made.stderr
        viewer = made.stdout.strip().splitlines()[-1]
        assert hivewire(tmp_path, "agents", HIVEWIRE_TOKEN=viewer).returncode == 0
        refused = hivewire(tmp_path, "submit", "echo", HIVEWIRE_TOKEN=viewer)
        assert refused.returncode == 2 and "PERMISSION_DENIED" in refused.stderr
        bogus = hivewire(tmp_path, "agents", HIVEWIRE_TOKEN="hw_nope")
        assert bogus.returncode == 2 and "UNAUTHENTICATED" in bogus.stderr, bogus.stderr

        # Without the client config: plaintext, refused by the TLS gateway.
        plain = hivewire(elsewhere, "--addr", s.gateway, "agents")
        assert plain.returncode == 2 and "UNAVAILABLE" in plain.stderr, plain.stderr
        healthy, line = probe(s.gateway)  # this process has no client config either
        assert not healthy and "UNAVAILABLE" in line
        ca = (data / "tls" / "ca.pem").read_bytes()

    # A later run reuses the CA and certificates, and rewrites the client config.
    with hivewire_up(data, clean_env(), args=("--secure",)) as again:
        assert "(reused)" in again.log()
        assert (data / "tls" / "ca.pem").read_bytes() == ca
        assert f"HIVEWIRE_GATEWAY_ADDR={again.gateway}\n" in (data / "client.env").read_text()
        assert hivewire(tmp_path, "healthcheck", again.gateway).returncode == 0
        listed = hivewire(tmp_path, "agents")
        assert listed.returncode == 0, listed.stderr


def test_plaintext_off_loopback_needs_insecure(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused = subprocess.run(
        up_command(data, gateway_addr="0.0.0.0:0"),
        env=clean_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.replace("│", " ").split())
    assert "refusing to listen on 0.0.0.0:0 without TLS" in message
    assert "--secure" in message and "--insecure" in message
    assert not data.exists()  # refused before anything started

    with hivewire_up(data, clean_env(), args=("--insecure",), gateway_addr="0.0.0.0:0") as s:
        assert s.gateway.startswith("127.0.0.1:")  # bound on every interface, dialled here
        healthy, line = probe(s.gateway)
        assert healthy, line
