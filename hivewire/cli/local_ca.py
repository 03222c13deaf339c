"""The certificates of the local CA (local_tls.py): issued, loaded and checked with the
cryptography package, which only this module imports."""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)
# Clocks of the machines that check a new certificate may lag a little behind this one.
BACKDATE = datetime.timedelta(hours=1)
Key = ec.EllipticCurvePrivateKey


def ensure_certificates(directory: Path, hosts: Sequence[str], now: datetime.datetime) -> list[str]:
    """Make or renew what `directory` lacks (the server certificate naming `hosts`); the names
    of the files written."""
    files = _Files(directory)
    written: list[str] = []
    ca = _load(files, "ca.pem", "ca-key.pem", now)
    new_ca = ca is None or not _is_ca(ca[0])
    if ca is None or new_ca:
        ca = _issue(files, "ca.pem", "ca-key.pem", _ca_builder(now), None)
        written += ["ca.pem", "ca-key.pem"]
    wanted = _names(hosts)
    leaves = {
        "server": (
            "hivewire-server",
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            wanted,
        ),
        "client": ("hivewire-client", [ExtendedKeyUsageOID.CLIENT_AUTH], []),
    }
    for name, (common_name, usages, names) in leaves.items():
        cert_file, key_file = f"{name}.pem", f"{name}-key.pem"
        leaf = None if new_ca else _load(files, cert_file, key_file, now)
        if leaf is None or not _signed_by(leaf[0], ca[0]) or not _names_cover(leaf[0], names):
            builder = _leaf_builder(now, common_name, usages, names)
            _issue(files, cert_file, key_file, builder, ca)
            written += [cert_file, key_file]
    return written


def _ca_builder(now: datetime.datetime) -> x509.CertificateBuilder:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Hivewire local CA")])
    key_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        _base(now, CA_DAYS)
        .subject_name(name)
        .issuer_name(name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage, critical=True)
    )


def _leaf_builder(
    now: datetime.datetime,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
    names: list[x509.GeneralName],
) -> x509.CertificateBuilder:
    key_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        _base(now, LEAF_DAYS)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder


def _base(now: datetime.datetime, days: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _issue(
    files: _Files,
    cert_file: str,
    key_file: str,
    builder: x509.CertificateBuilder,
    issuer: tuple[x509.Certificate, Key] | None,
) -> tuple[x509.Certificate, Key]:
    """Sign `builder` with a new key (by `issuer`, else by itself) and write both files."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    builder = builder.public_key(public).add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public), critical=False
    )
    signer = key
    if issuer is not None:
        issuer_cert, signer = issuer
        builder = builder.issuer_name(issuer_cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    cert = builder.sign(signer, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(files.path(key_file), key_pem, 0o600)
    _write(files.path(cert_file), cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomically, created with `mode` (a key is never readable by others, not even briefly)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)  # whatever the umask
    os.replace(tmp, path)


def _load(
    files: _Files, cert_file: str, key_file: str, now: datetime.datetime
) -> tuple[x509.Certificate, Key] | None:
    """The certificate and its key if both are readable, match and stay valid long enough."""
    try:
        cert = x509.load_pem_x509_certificate(files.path(cert_file).read_bytes())
        key = serialization.load_pem_private_key(files.path(key_file).read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, Key) or key.public_key() != cert.public_key():
        return None
    if cert.not_valid_before_utc > now or cert.not_valid_after_utc - RENEW_BEFORE < now:
        return None
    return cert, key


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Subject alternative names: an IP address entry for an address, else a DNS name."""
    out: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def _names_cover(cert: x509.Certificate, names: list[x509.GeneralName]) -> bool:
    try:
        have = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        have = set()
    return set(names) <= have


class _Files:
    """The files of the local CA by name (local_tls.LocalTls, without importing it back)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name
