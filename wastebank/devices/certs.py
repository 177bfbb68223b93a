"""The site's certificates: the CA, the broker's certificate, and a gateway page's.

``certs/ca.crt``, ``certs/ca.key``: the site CA (`wastebank certs init`). Gateways get ``ca.crt``
to verify the broker; ``ca.key`` never leaves the server (mode 0600). ``certs/server.crt``,
``certs/server.key``: the broker's certificate for its host names and addresses, signed by the
site CA.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wastebank.devices._errors import DeviceRefused, DeviceSetupError
from wastebank.devices._files import write_private, write_public
from wastebank.devices.broker import BrokerAuthFiles
from wastebank.devices.registry import check_code

CA_DAYS = 3650
SERVER_DAYS = 730
RENEW_BEFORE = timedelta(days=30)
"""`wastebank certs init` reissues the broker's certificate this long before it expires."""
BACKDATE = timedelta(hours=1)  # a little clock skew between server and gateway is tolerated

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class CertReport:
    """What `init_certs` did, and what is in force now."""

    ca_created: bool
    server_issued: bool
    reason: str  # why the server certificate was (re)issued, or why not
    ca_fingerprint: str  # SHA-256, colon-separated hex: compare it on a gateway's copy
    ca_not_after: datetime
    hosts: tuple[str, ...]
    server_not_after: datetime


def default_hosts() -> list[str]:
    """Loopback names and this machine's host name, for a broker used on one machine."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    name = os.uname().nodename.lower()
    if name and name not in hosts and _valid_dns_name(name):
        hosts.append(name)
    return hosts


def normalize_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """Check each host name or IP address; lower-case, de-duplicated, order kept."""
    out: list[str] = []
    for raw in hosts:
        host = raw.strip().lower()
        try:
            host = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            if not _valid_dns_name(host):
                raise DeviceRefused(
                    f"bukan nama host atau alamat IP / not a host name or IP address: {raw!r}"
                ) from None
        if host not in out:
            out.append(host)
    if not out:
        raise DeviceRefused("perlu minimal satu --host / need at least one --host")
    return tuple(out)


def _valid_dns_name(name: str) -> bool:
    labels = name.rstrip(".").split(".")
    if labels and labels[0] == "*":  # a wildcard for one level, e.g. *.example.go.id
        labels = labels[1:]
    return bool(labels) and len(name) <= 253 and all(_DNS_LABEL.match(lb) for lb in labels)


def init_certs(
    files: BrokerAuthFiles,
    hosts: Sequence[str] | None = None,
    *,
    force: bool = False,
    site_name: str = "wastebank",
    now: datetime | None = None,
) -> CertReport:
    """Create the site CA (unless it exists and not ``force``) and (re)issue the broker's cert.

    The server certificate is issued when it is missing, when ``hosts`` differ from its names,
    when it was not signed by the current CA, or when it expires within ``RENEW_BEFORE``;
    otherwise nothing changes. Without ``hosts``, an existing certificate keeps its names and a
    new one gets ``default_hosts()``.
    """
    now = now or datetime.now(UTC)
    wanted = normalize_hosts(hosts) if hosts else None
    files.ca_cert.parent.mkdir(parents=True, exist_ok=True)
    files.ca_cert.parent.chmod(0o700)  # the keys live here

    ca_created = False
    ca_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if force or not (files.ca_cert.is_file() and files.ca_key.is_file()):
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        ca_cert = _build_ca(ca_key, site_name, now)
        write_private(files.ca_key, _key_pem(ca_key))
        write_public(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
        ca_created = True
    else:
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise DeviceSetupError(
                f"kunci CA tidak didukung / unsupported CA key in {files.ca_key}"
            )
        ca_key = loaded

    current = _load_cert(files.server_cert) if files.server_key.is_file() else None
    reason = _reissue_reason(current, ca_cert, wanted, now)
    if reason is not None:
        names = wanted or (tuple(_cert_hosts(current)) if current else None)
        names = names or normalize_hosts(default_hosts())
        server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        server_cert = _build_server(server_key, ca_cert, ca_key, names, now)
        write_private(files.server_key, _key_pem(server_key))
        write_public(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
        current = server_cert
    assert current is not None
    return CertReport(
        ca_created=ca_created,
        server_issued=reason is not None,
        reason=reason or "masih berlaku / still valid",
        ca_fingerprint=fingerprint(ca_cert),
        ca_not_after=ca_cert.not_valid_after_utc,
        hosts=tuple(_cert_hosts(current)),
        server_not_after=current.not_valid_after_utc,
    )


PAGE_DAYS = 397
"""A gateway page's certificate: browsers refuse a server certificate valid for longer than
398 days (Apple's rule, which Chromium follows for publicly trusted CAs)."""


@dataclass(frozen=True)
class PageCert:
    """What `issue_page_cert` wrote: a gateway's HTTPS certificate and key, and the CA's."""

    cert: Path
    key: Path
    ca_cert: Path
    hosts: tuple[str, ...]
    not_after: datetime
    ca_fingerprint: str


def issue_page_cert(
    files: BrokerAuthFiles,
    gateway_id: str,
    hosts: Sequence[str],
    out_dir: Path,
    *,
    now: datetime | None = None,
) -> PageCert:
    """A certificate for a gateway's local endpoint (the attendant page over HTTPS on the
    bank's Wi-Fi), for its ``hosts`` (its LAN address, a local name), signed by the site CA
    (`init_certs` first): ``{out_dir}/page.crt``, ``page.key`` (0600) and a copy of the CA's
    ``ca.crt`` (the tablets trust it). A new key each time: run it again before ``not_after``."""
    check_code(gateway_id, "gateway id")
    names = normalize_hosts(hosts)
    now = now or datetime.now(UTC)
    ca_cert = _load_cert(files.ca_cert)
    if ca_cert is None or not files.ca_key.is_file():
        raise DeviceSetupError(
            "belum ada CA / no site CA yet: wastebank certs init (on the city server)"
        )
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise DeviceSetupError(f"kunci CA tidak didukung / unsupported CA key in {files.ca_key}")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _build_server(key, ca_cert, ca_key, names, now, days=PAGE_DAYS)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    out = PageCert(
        cert=out_dir / "page.crt",
        key=out_dir / "page.key",
        ca_cert=out_dir / "ca.crt",
        hosts=tuple(_cert_hosts(cert)),
        not_after=cert.not_valid_after_utc,
        ca_fingerprint=fingerprint(ca_cert),
    )
    write_private(out.key, _key_pem(key))
    write_public(out.cert, cert.public_bytes(serialization.Encoding.PEM))
    write_public(out.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    return out


@dataclass(frozen=True)
class CertInfo:
    path: Path
    subject: str
    fingerprint: str
    not_before: datetime
    not_after: datetime
    hosts: tuple[str, ...]  # server certificate: its names; CA: empty


def cert_info(path: Path) -> CertInfo | None:
    cert = _load_cert(path)
    if cert is None:
        return None
    return CertInfo(
        path=path,
        subject=cert.subject.rfc4514_string(),
        fingerprint=fingerprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        hosts=tuple(_cert_hosts(cert)),
    )


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _reissue_reason(
    current: x509.Certificate | None,
    ca_cert: x509.Certificate,
    wanted: tuple[str, ...] | None,
    now: datetime,
) -> str | None:
    if current is None:
        return "belum ada / none yet"
    try:
        current.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return "ditandatangani CA lain / signed by another CA"
    if wanted is not None and set(wanted) != set(_cert_hosts(current)):
        return "nama host berubah / host names changed"
    if current.not_valid_after_utc - now < RENEW_BEFORE:
        return "segera kedaluwarsa / expires soon"
    return None


def _build_ca(key: rsa.RSAPrivateKey, site_name: str, now: datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wastebank"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{site_name} CA"[:64]),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        # path_length=0: this CA signs the broker's certificate, never another CA
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _build_server(
    key: rsa.RSAPrivateKey,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    now: datetime,
    days: int = SERVER_DAYS,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _cert_hosts(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return san.get_values_for_type(x509.DNSName) + names


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DeviceSetupError(f"sertifikat rusak / unreadable certificate {path}: {exc}") from None


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
