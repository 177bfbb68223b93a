"""Device credentials for the broker's TLS listener: the site's certificates, and a password and
an ACL per gateway or TPS sensor, so each device may publish only under its own ids.

Files (all under the run dir; see ``services.broker_auth_files``):

* ``certs/ca.crt``, ``certs/ca.key``: the site CA (`wastebank certs init`). Gateways get
  ``ca.crt`` to verify the broker; ``ca.key`` never leaves the server (mode 0600).
* ``certs/server.crt``, ``certs/server.key``: the broker's certificate for its host names and
  addresses, signed by the site CA.
* ``mosquitto/passwd``: Mosquitto's password file; hashes are written by Debian's
  ``mosquitto_passwd``, never by us.
* ``mosquitto/devices.toml``: the registry, one entry per device (what it is, when issued);
  ``mosquitto/acl`` is generated from it on every change. The ledger database is not involved.

Usernames: a gateway logs in as its ``gateway_id`` (unique city-wide: it is part of every deposit
id), a TPS sensor as ``{tps_code}.{sensor_id}``. Codes never contain ``.``, so the two never clash.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import secrets
import subprocess
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import tomli_w
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wastebank import broker_events
from wastebank.errors import Conflict, NotFound, Refused, SetupError, WastebankError
from wastebank.messages import CODE_PATTERN, Topics
from wastebank.services import BrokerAuthFiles

MOSQUITTO_PASSWD_BIN = Path("/usr/bin/mosquitto_passwd")
CA_DAYS = 3650
SERVER_DAYS = 730
RENEW_BEFORE = timedelta(days=30)
"""`wastebank certs init` reissues the broker's certificate this long before it expires."""
BACKDATE = timedelta(hours=1)  # a little clock skew between server and gateway is tolerated
PASSWORD_BYTES = 24  # 32 URL-safe characters

_CODE = re.compile(CODE_PATTERN)
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DeviceError(WastebankError):
    """A device or certificate operation was refused or failed; the message says why."""


class DeviceRefused(DeviceError, Refused):
    """A host name, code, topic or device the rules do not allow."""


class DeviceConflict(DeviceError, Conflict):
    """The device is registered already (or as something else)."""


class DeviceNotFound(DeviceError, NotFound):
    """No such device in the registry."""


class DeviceSetupError(DeviceError, SetupError):
    """The site's CA, certificates, registry or ``mosquitto_passwd`` need an operator first."""


# ---- certificates -----------------------------------------------------------------------------


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
        _write_private(files.ca_key, _key_pem(ca_key))
        _write_public(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
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
        _write_private(files.server_key, _key_pem(server_key))
        _write_public(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
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
    _check_code(gateway_id, "gateway id")
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
    _write_private(out.key, _key_pem(key))
    _write_public(out.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write_public(out.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
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


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by its owner only (0600), replacing ``path`` atomically."""
    _atomic_write(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _atomic_write(path, data, 0o644)


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


# ---- devices ----------------------------------------------------------------------------------

DeviceKind = Literal["gateway", "sensor"]


@dataclass(frozen=True)
class Device:
    """A device allowed on the TLS listener and the topics it may use.

    ``site`` is the bank code (gateway) or the TPS code (sensor); ``serves`` are the TPS sensors
    whose fill readings a gateway publishes (serial and LoRaWAN sensors on its site file);
    ``reads`` are topic filters it may subscribe to (the network server's uplinks it decodes).
    """

    kind: DeviceKind
    site: str
    device_id: str
    topic_prefix: str = ""
    serves: tuple[tuple[str, str], ...] = ()
    reads: tuple[str, ...] = ()
    created_at: datetime | None = None
    rotated_at: datetime | None = None

    def __post_init__(self) -> None:
        for what, code in (("site", self.site), ("device id", self.device_id)):
            _check_code(code, what)
        for tps, sensor in self.serves:
            _check_code(tps, "TPS code")
            _check_code(sensor, "sensor id")
        if self.kind == "sensor" and (self.serves or self.reads):
            raise DeviceRefused("hanya gateway / only gateways serve sensors or read uplinks")
        if self.topic_prefix and not re.fullmatch(r"([A-Za-z0-9_-]+/)+", self.topic_prefix):
            raise DeviceRefused(f"awalan topik tidak sah / bad topic prefix {self.topic_prefix!r}")
        for topic_filter in self.reads:
            _check_filter(topic_filter)

    @property
    def username(self) -> str:
        return self.device_id if self.kind == "gateway" else f"{self.site}.{self.device_id}"

    @property
    def publish_topics(self) -> list[str]:
        topics = Topics(self.topic_prefix)
        if self.kind == "sensor":
            return [
                topics.fill(self.site, self.device_id),
                topics.sensor_status(self.site, self.device_id),
            ]
        bank, gateway = self.site, self.device_id
        return [
            topics.deposit(bank, gateway),
            topics.gateway_status(bank, gateway),
            topics.gateway_health(bank, gateway),
            topics.gateway_alert(bank, gateway),
            *(topics.fill(tps, sensor) for tps, sensor in self.serves),
        ]

    @property
    def read_filters(self) -> list[str]:
        return [self.topic_prefix + f for f in self.reads]

    def describe(self) -> str:
        what = "bank" if self.kind == "gateway" else "TPS"
        return f"{self.kind} {self.device_id} ({what} {self.site})"


def _check_code(value: str, what: str) -> None:
    if not _CODE.match(value):
        raise DeviceRefused(
            f"{what} tidak sah / invalid {what} {value!r}: lower-case letters, digits and dashes"
        )


def _check_filter(topic_filter: str) -> None:
    levels = topic_filter.split("/")
    ok = (
        bool(topic_filter)
        and not topic_filter.startswith("$")
        and all(c not in topic_filter for c in "\0\n\r\t ")
        and all(("+" not in lv or lv == "+") and ("#" not in lv or lv == "#") for lv in levels)
        and "#" not in levels[:-1]
    )
    if not ok:
        raise DeviceRefused(f"filter topik tidak sah / invalid topic filter {topic_filter!r}")


@dataclass(frozen=True)
class Principal:
    """One of the city server's own processes on the broker: a username, a password that
    `wastebank services up` (or `wastebank broker credentials`) generates, and what it may use.

    Topic rules hold with and without one level of topic prefix (``+/wb/v1/...``): a second
    deployment or a test isolates itself with a prefix (docs/protocol.md).
    """

    name: str
    purpose: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    development: bool = False
    """Only for development, demos and tests: never create it on a city's broker."""


def _prefixed(*filters: str) -> tuple[str, ...]:
    return tuple(f for x in filters for f in (x, f"+/{x}"))


PRINCIPALS: tuple[Principal, ...] = (
    Principal("ingest", "the deposit and fill-reading ingester: reads every device topic", ("#",)),
    Principal("api", "the API: connects to report the broker's health, uses no topic"),
    Principal(
        "tps",
        "`wastebank tps watch`: reads fill readings, publishes TPS alerts",
        ("#",),
        _prefixed("wb/v1/+/tps/#"),
    ),
    Principal(
        "sim",
        "device simulators (`wastebank sim ...`): publish as any device",
        ("#",),
        ("#",),
        development=True,
    ),
    Principal("test", "the test suite and benchmarks: every topic", ("#",), ("#",), True),
)
"""Every process identity but the devices'. A device's username can never take one of these
names (``Registry.add`` refuses it)."""
PRINCIPAL_NAMES = frozenset(p.name for p in PRINCIPALS)


@dataclass(frozen=True)
class Issued:
    device: Device
    password: str
    rotated: bool


@dataclass
class Registry:
    """The devices allowed on the broker's TLS listener: ``devices.toml`` (what each one is),
    Mosquitto's password file (``mosquitto_passwd``) and its ACL file (generated).

    Every change holds an exclusive lock, so two operators cannot interleave edits.
    """

    files: BrokerAuthFiles
    passwd_bin: Path = MOSQUITTO_PASSWD_BIN

    @property
    def path(self) -> Path:
        return self.files.password_file.with_name("devices.toml")

    def devices(self) -> list[Device]:
        return sorted(self._read().values(), key=lambda d: d.username)

    def get(self, username: str) -> Device | None:
        return self._read().get(username)

    def add(self, device: Device, *, rotate: bool = False) -> Issued:
        """Issue a password for ``device``; refused if it exists, unless ``rotate``."""
        if device.username in PRINCIPAL_NAMES:
            raise DeviceRefused(
                f"{device.username} adalah identitas proses / is a process identity "
                f"({', '.join(sorted(PRINCIPAL_NAMES))}); pick another device id"
            )
        with self._locked():
            devices = self._read()
            existing = devices.get(device.username)
            now = datetime.now(UTC).replace(microsecond=0)
            if existing is not None and not rotate:
                raise DeviceConflict(
                    f"{device.username} sudah terdaftar / already registered as "
                    f"{existing.describe()}; --rotate issues a new password"
                )
            if existing is None and rotate:
                raise DeviceNotFound(
                    f"{device.username} belum terdaftar / not registered; add it without --rotate"
                )
            moved = existing is not None and (existing.kind, existing.site) != (
                device.kind,
                device.site,
            )
            if existing is not None and moved:
                raise DeviceConflict(
                    f"{device.username} terdaftar sebagai / is registered as "
                    f"{existing.describe()}; remove it first to move it"
                )
            created = existing.created_at if existing is not None else now
            stored = Device(
                kind=device.kind,
                site=device.site,
                device_id=device.device_id,
                topic_prefix=device.topic_prefix,
                serves=device.serves,
                reads=device.reads,
                created_at=created,
                rotated_at=now if existing is not None else None,
            )
            password = secrets.token_urlsafe(PASSWORD_BYTES)
            self._set_password(stored.username, password)
            devices[stored.username] = stored
            self._write(devices)
            return Issued(stored, password, rotated=existing is not None)

    def remove(self, username: str) -> Device:
        with self._locked():
            devices = self._read()
            device = devices.pop(username, None)
            if device is None:
                raise DeviceNotFound(f"{username} tidak terdaftar / not registered")
            self._write(devices)  # the ACL first: even a password left behind grants nothing
            self._delete_password(username)
            return device

    def ensure_principals(self, names: Iterable[str], secrets_dir: Path) -> list[str]:
        """Give each named process identity a password, kept in ``secrets_dir/<name>`` (0600,
        the folder 0700) for the process to read: created when missing, else left as it is.
        Returns the names that got a new password (Mosquitto must re-read its files)."""
        wanted = {p.name: p for p in PRINCIPALS}
        unknown = sorted(set(names) - set(wanted))
        if unknown:
            raise DeviceSetupError(f"identitas tak dikenal / unknown process identities: {unknown}")
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        secrets_dir.chmod(0o700)
        issued: list[str] = []
        with self._locked():
            users = set(self.password_users())
            for name in names:
                secret = secrets_dir / name
                if secret.is_file() and name in users:
                    continue
                password = secrets.token_urlsafe(PASSWORD_BYTES)
                self._set_password(name, password)
                _atomic_write(secret, f"{password}\n".encode(), 0o600)
                issued.append(name)
            self._write(self._read())
        return issued

    def password_users(self) -> list[str]:
        """Usernames in Mosquitto's password file (to spot ones added by hand)."""
        try:
            lines = self.files.password_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line.split(":", 1)[0] for line in lines if ":" in line]

    # ---- files ----

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name("devices.lock")
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Device]:
        try:
            data = tomllib.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except tomllib.TOMLDecodeError as exc:
            raise DeviceSetupError(
                f"registri rusak / unreadable registry {self.path}: {exc}"
            ) from None
        devices: dict[str, Device] = {}
        for username, entry in data.get("devices", {}).items():
            device = _device_from_toml(entry)
            if device.username != username:
                raise DeviceSetupError(f"{self.path}: entry {username!r} names {device.username!r}")
            devices[username] = device
        return devices

    def _write(self, devices: dict[str, Device]) -> None:
        registry = {
            "devices": {name: _device_to_toml(d) for name, d in sorted(devices.items())},
        }
        header = b"# Written by `wastebank device`; the broker's ACL file is generated from it.\n"
        _atomic_write(self.path, header + tomli_w.dumps(registry).encode(), 0o600)
        _atomic_write(self.files.acl_file, acl_text(devices.values()).encode(), 0o600)

    def _set_password(self, username: str, password: str) -> None:
        pw_file = self.files.password_file
        if not pw_file.exists():
            fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        # Interactive form, the password on stdin (twice: "Password:", "Reenter password:"),
        # so it never appears in a process list as `-b file user password` would.
        self._passwd([str(pw_file), username], stdin=f"{password}\n{password}\n")

    def _delete_password(self, username: str) -> None:
        if username in self.password_users():
            self._passwd(["-D", str(self.files.password_file), username])

    def _passwd(self, args: list[str], stdin: str = "") -> None:
        if not self.passwd_bin.exists():
            raise DeviceSetupError(
                f"{self.passwd_bin} tidak ada / not found: sudo apt-get install mosquitto"
            )
        try:
            result = subprocess.run(
                [str(self.passwd_bin), *args],
                input=stdin,
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeviceSetupError(f"mosquitto_passwd gagal / failed: {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            raise DeviceSetupError(
                f"mosquitto_passwd gagal / failed ({result.returncode}): {detail}"
            )


def acl_text(devices: Iterable[Device]) -> str:
    """Mosquitto's ACL file: per user, what it may publish (write) and subscribe to (read).

    Anything not listed is refused on the listener that uses this file: a publish is dropped
    (MQTT 5: PUBACK "Not authorized", 0x87), a message on an unlisted topic is never delivered.
    """
    lines = [
        "# Written by `wastebank device` from devices.toml; edits are overwritten.",
        "# Used by every listener; anything not granted here is refused.",
    ]
    for device in sorted(devices, key=lambda d: d.username):
        lines += ["", f"# {device.describe()}", f"user {device.username}"]
        lines += [f"topic write {topic}" for topic in device.publish_topics]
        lines += [f"topic read {topic_filter}" for topic_filter in device.read_filters]
        lines += _broker_events_rules(device.username)
    for principal in PRINCIPALS:
        lines += ["", f"# {principal.purpose}", f"user {principal.name}"]
        lines += [f"topic read {topic_filter}" for topic_filter in principal.reads]
        lines += [f"topic write {topic_filter}" for topic_filter in principal.writes]
        lines += _broker_events_rules(principal.name)
    return "\n".join(lines) + "\n"


def _broker_events_rules(username: str) -> list[str]:
    """The broker's own topics (wastebank/broker_events.py): its readers may read the refusal
    events, nobody may publish there. A deny beats any grant (Mosquitto checks denials first),
    so a ``#`` of the test, sim or tps identities, or a device's read filter, reaches none of
    it, and no client can forge an event."""
    if username in broker_events.READERS:
        return [f"topic read {broker_events.REFUSED_TOPIC}"]
    return [f"topic deny {broker_events.NAMESPACE}#"]


def _device_to_toml(device: Device) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": device.kind,
        "site": device.site,
        "device_id": device.device_id,
        "topic_prefix": device.topic_prefix,
        "serves": [f"{tps}/{sensor}" for tps, sensor in device.serves],
        "reads": list(device.reads),
    }
    if device.created_at is not None:
        entry["created_at"] = device.created_at
    if device.rotated_at is not None:
        entry["rotated_at"] = device.rotated_at
    return entry


def _device_from_toml(entry: dict[str, Any]) -> Device:
    try:
        kind = entry["kind"]
        if kind not in ("gateway", "sensor"):
            raise DeviceSetupError(f"unknown device kind {kind!r}")
        return Device(
            kind=kind,
            site=entry["site"],
            device_id=entry["device_id"],
            topic_prefix=entry.get("topic_prefix", ""),
            serves=parse_serves(entry.get("serves", [])),
            reads=tuple(entry.get("reads", [])),
            created_at=entry.get("created_at"),
            rotated_at=entry.get("rotated_at"),
        )
    except (KeyError, ValueError) as exc:
        raise DeviceSetupError(f"registri rusak / bad registry entry: {exc}") from None


def parse_serves(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``TPS/SENSOR`` pairs from the command line."""
    out: list[tuple[str, str]] = []
    for value in values:
        tps, sep, sensor = value.partition("/")
        if not sep:
            raise DeviceRefused(f"perlu TPS/SENSOR / need TPS/SENSOR, got {value!r}")
        _check_code(tps, "TPS code")
        _check_code(sensor, "sensor id")
        if (tps, sensor) not in out:
            out.append((tps, sensor))
    return tuple(out)


def site_snippet(
    issued: Issued,
    *,
    host: str,
    port: int,
    ca_file: str,
) -> str:
    """The ``[mqtt]`` table of a gateway's site file (or a sensor's settings) for ``issued``."""
    device = issued.device
    mqtt: dict[str, Any] = {
        "host": host,
        "port": port,
        "tls": True,
        "ca_file": ca_file,
        "username": device.username,
        "password": issued.password,
    }
    if device.topic_prefix:
        mqtt["topic_prefix"] = device.topic_prefix
    header = (
        f"# MQTT credentials for {device.describe()}, issued by `wastebank device add`.\n"
        "# Put this [mqtt] table in the site file (e.g. /etc/wastebank/site.toml, mode 0640) and\n"
        f"# copy the site CA (ca.crt) to {ca_file}. Keep the password secret.\n"
    )
    return header + tomli_w.dumps({"mqtt": mqtt})


def write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read (0600): a snippet with a password in it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, text.encode(), 0o600)
