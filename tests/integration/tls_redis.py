"""A redis-server that speaks only TLS (and requires a client certificate), with a throwaway CA
made by the openssl command."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from hivewire.cli.embedded_redis import EmbeddedRedis


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def query(self) -> str:
        """redis-py's URL parameters for verifying the server and presenting the client."""
        return urlencode(
            {
                "ssl_ca_certs": self.ca,
                "ssl_certfile": self.client_cert,
                "ssl_keyfile": self.client_key,
            },
            safe="/",
        )


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_tls_files(folder: Path) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make test certificates")
    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=hivewire-test-ca", "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    files = {}
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=hivewire-{name}",
                 "-keyout", str(key), "-out", str(csr))  # fmt: skip
        ext = folder / f"{name}.ext"
        ext.write_text(extra + "\n" if extra else "basicConstraints=CA:FALSE\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                 "-CAcreateserial", "-days", "2", "-extfile", str(ext),
                 "-out", str(cert))  # fmt: skip
        files[name] = (cert, key)
    return TlsFiles(ca, *files["server"], *files["client"])


class TlsRedis(EmbeddedRedis):
    """TLS only: `--port 0` (no plain listener), `--tls-port` the port it picks."""

    def __init__(self, data_dir: Path, tls: TlsFiles, **kw: Any) -> None:
        super().__init__(0, data_dir, appendonly=False, **kw)
        self.tls = tls

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?{self.tls.query()}"

    def command(self) -> list[str]:
        argv = super().command()
        at = argv.index("--port")
        argv[at : at + 2] = ["--port", "0", "--tls-port", str(self.port)]
        return [
            *argv,
            "--tls-cert-file", str(self.tls.server_cert),
            "--tls-key-file", str(self.tls.server_key),
            "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "yes",
        ]  # fmt: skip

    def _connect(self) -> socket.socket:
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        try:
            return context.wrap_socket(raw, server_hostname="127.0.0.1")
        except BaseException:
            raw.close()
            raise
