"""The peers' own virtual environment (bench/.peers-venv), created on first use from
bench/peers/requirements.txt and recreated when that file changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
REQUIREMENTS = HERE / "requirements.txt"
VENV = Path(os.environ.get("HIVEWIRE_BENCH_PEERS_VENV", HERE.parent / ".peers-venv"))
APPS = HERE / "apps"


def python() -> Path:
    return VENV / "bin" / "python"


def ensure(write=print) -> Path:  # type: ignore[no-untyped-def]
    """The peer venv's python, installing the peers first if needed."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = VENV / ".requirements-sha256"
    if stamp.exists() and stamp.read_text() == digest and python().exists():
        return python()
    write(f"installing the peers into {VENV} (once) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest)
    return python()
