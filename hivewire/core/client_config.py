"""The client config `hivewire up` leaves in its data directory, so the CLI and SDKs run on the
same machine find the stack by themselves (as kubectl finds its cluster).

`<data dir>/client.env` holds `HIVEWIRE_NAME=value` lines: the gateway, registry and Redis
addresses, and under `up --secure` the CA and the client certificate (absolute paths into
`<data dir>/tls/`). The data directory is $HIVEWIRE_DATA_DIR, else `.hivewire` in the current
directory. A variable set in the environment wins over its line here. Anything else a client
needs to find (a token file next to the TLS files, say) is one more line, read the same way
through `hivewire.core.defaults.client_setting`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_DATA_DIR = ".hivewire"
FILE_NAME = "client.env"
PREFIX = "HIVEWIRE_"
HEADER = (
    "# Written by `hivewire up`: how the CLI and SDKs on this machine reach the stack.\n"
    "# A HIVEWIRE_* variable set in the environment wins over its line here.\n"
)


def data_dir() -> Path:
    """$HIVEWIRE_DATA_DIR, else `.hivewire` (relative to the current directory)."""
    return Path(os.environ.get(f"{PREFIX}DATA_DIR") or DEFAULT_DATA_DIR)


def config_path(directory: Path | None = None) -> Path:
    return (directory if directory is not None else data_dir()) / FILE_NAME


def read_client_config(path: Path | None = None) -> dict[str, str]:
    """The HIVEWIRE_* lines of the client config (default: the current data directory's); {}
    when there is none. Blank lines, comments and other names are ignored."""
    try:
        text = (path or config_path()).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.startswith(PREFIX):
            values[name] = value.strip()
    return values


def write_client_config(directory: Path, values: Mapping[str, str]) -> Path:
    """Replace `directory`'s client config with `values` (HIVEWIRE_* names), atomically and
    readable by the owner only (it may name credentials)."""
    path = config_path(directory)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    lines = [f"{name}={value}\n" for name, value in values.items() if value]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(HEADER + "".join(lines))
    os.replace(tmp, path)
    return path


def remove_client_config(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        config_path(directory).unlink()
