"""`hivewire up --secure`'s local CA: what it makes, what it keeps, what it makes anew."""

from __future__ import annotations

import datetime
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from hivewire.cli.local_tls import LocalTls, ensure_local_tls

ALL = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"]
NOW = datetime.datetime.now(datetime.UTC)


def cert(files: LocalTls, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(files.path(name).read_bytes())


def contents(files: LocalTls) -> dict[str, bytes]:
    return {name: files.path(name).read_bytes() for name in ALL}


def alt_names(certificate: x509.Certificate) -> tuple[set[str], set[str]]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(san.get_values_for_type(x509.DNSName)), ips


def usages(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_makes_a_ca_a_server_and_a_client_certificate(tmp_path: Path) -> None:
    files, written = ensure_local_tls(tmp_path / "tls", ["hive.example", "10.1.2.3"])
    assert written == ALL
    for name in ALL:
        mode = stat.S_IMODE(files.path(name).stat().st_mode)
        assert mode == (0o600 if name.endswith("-key.pem") else 0o644), (name, oct(mode))
    assert stat.S_IMODE(files.directory.stat().st_mode) == 0o700
    ca, server, client = (cert(files, n) for n in ("ca.pem", "server.pem", "client.pem"))
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert leaf.not_valid_after_utc > NOW + datetime.timedelta(days=300)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    dns, ips = alt_names(server)
    assert dns == {"localhost", "hive.example"}
    assert {ipaddress.ip_address(ip) for ip in ips} == {
        ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "10.1.2.3")
    }
    # The services present their server certificate when they dial each other under mTLS.
    assert usages(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert files.server().requires_client_cert and not files.client().requires_client_cert


def test_a_later_run_reuses_what_is_good(tmp_path: Path) -> None:
    files, _ = ensure_local_tls(tmp_path, ["hive.example"])
    before = contents(files)
    again, written = ensure_local_tls(tmp_path, ["hive.example"])
    assert (again, written) == (files, [])
    assert contents(files) == before


def test_a_missing_or_mismatched_file_is_made_anew_alone(tmp_path: Path) -> None:
    files, _ = ensure_local_tls(tmp_path)
    before = contents(files)
    files.path("server.pem").unlink()
    _, written = ensure_local_tls(tmp_path)
    assert written == ["server.pem", "server-key.pem"]
    after = contents(files)
    assert {n for n in ALL if after[n] != before[n]} == {"server.pem", "server-key.pem"}
    files.path("client-key.pem").write_bytes(after["server-key.pem"])  # not client.pem's key
    _, written = ensure_local_tls(tmp_path)
    assert written == ["client.pem", "client-key.pem"]
    cert(files, "client.pem").verify_directly_issued_by(cert(files, "ca.pem"))


def test_a_new_host_name_renews_the_server_certificate(tmp_path: Path) -> None:
    files, _ = ensure_local_tls(tmp_path)
    _, written = ensure_local_tls(tmp_path, ["hive.example"])
    assert written == ["server.pem", "server-key.pem"]
    assert "hive.example" in alt_names(cert(files, "server.pem"))[0]
    _, written = ensure_local_tls(tmp_path)  # fewer names than it holds: kept
    assert written == []


def test_expiring_certificates_are_renewed(tmp_path: Path) -> None:
    files, _ = ensure_local_tls(tmp_path, now=NOW - datetime.timedelta(days=340))
    ca_before = files.path("ca.pem").read_bytes()
    _, written = ensure_local_tls(tmp_path)  # the leaves have < 30 days left, the CA years
    assert written == ["server.pem", "server-key.pem", "client.pem", "client-key.pem"]
    assert files.path("ca.pem").read_bytes() == ca_before
    assert cert(files, "server.pem").not_valid_after_utc > NOW + datetime.timedelta(days=300)


def test_a_new_ca_makes_every_certificate_anew(tmp_path: Path) -> None:
    files, _ = ensure_local_tls(tmp_path, now=NOW - datetime.timedelta(days=3640))
    _, written = ensure_local_tls(tmp_path)
    assert written == ALL
    ca = cert(files, "ca.pem")
    for leaf in ("server.pem", "client.pem"):
        cert(files, leaf).verify_directly_issued_by(ca)
    files.path("ca.pem").write_text("not a certificate")
    _, written = ensure_local_tls(tmp_path)
    assert written == ALL
