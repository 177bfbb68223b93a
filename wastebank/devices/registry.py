"""The devices allowed on the broker's TLS listener: a password and an ACL per gateway or TPS
sensor, so each device may publish only under its own ids.

``mosquitto/passwd``: Mosquitto's password file; hashes are written by Debian's
``mosquitto_passwd``, never by us. ``mosquitto/devices.toml``: the registry, one entry per device
(what it is, when issued); ``mosquitto/acl`` is generated from it on every change. The ledger
database is not involved.

Usernames: a gateway logs in as its ``gateway_id`` (unique city-wide: it is part of every deposit
id), a TPS sensor as ``{tps_code}.{sensor_id}``. Codes never contain ``.``, so the two never clash.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import subprocess
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

import tomli_w

from wastebank import broker_events
from wastebank.devices._errors import (
    DeviceConflict,
    DeviceNotFound,
    DeviceRefused,
    DeviceSetupError,
)
from wastebank.devices._files import atomic_write
from wastebank.devices.broker import BrokerAuthFiles, broker_auth_files
from wastebank.messages import CODE_PATTERN, Topics

MOSQUITTO_PASSWD_BIN = Path("/usr/bin/mosquitto_passwd")
PASSWORD_BYTES = 24  # 32 URL-safe characters

_CODE = re.compile(CODE_PATTERN)


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
            check_code(code, what)
        for tps, sensor in self.serves:
            check_code(tps, "TPS code")
            check_code(sensor, "sensor id")
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


def check_code(value: str, what: str) -> None:
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


def _not_ours(topic_filter: str, prefix: str) -> None:
    """A gateway reads its network server's uplinks and its JSON sensors' topics, never the
    city's own: a filter that could match a topic of ours (``wb/...``, under the device's
    prefix or not: a bank's deposits, with member cards; any device's health) or the broker's
    own (``wastebank/...``) is refused, a leading wildcard too (it matches every topic)."""
    if topic_filter.split("/", 1)[0] in ("+", "#"):
        raise DeviceRefused(
            f"filter {topic_filter!r} diawali wildcard: membaca semua topik / begins with a "
            "wildcard: it would read every topic, the banks' deposits too"
        )
    for ours in {"wb/#", f"{prefix}wb/#", "wastebank/#"}:
        if _overlap(topic_filter.split("/"), ours.split("/")):
            raise DeviceRefused(
                f"filter {topic_filter!r} membaca topik kota sendiri / reads the city's own "
                "topics (wb/v1/...): a gateway reads only its network server's uplinks and its "
                "JSON sensors' topics"
            )


def _overlap(a: list[str], b: list[str]) -> bool:
    """Whether some topic matches both MQTT filters (levels)."""
    if not a or not b:
        return not a and not b
    if "#" in (a[0], b[0]):
        return True
    if a[0] != b[0] and "+" not in (a[0], b[0]):
        return False
    return _overlap(a[1:], b[1:])


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
class Removed:
    """A device taken out of the registry (`wastebank device remove`), kept in ``devices.toml``
    until it is added again at the same site: the fleet leaves it out (docs/fleet.md)."""

    kind: DeviceKind
    site: str
    device_id: str
    removed_at: datetime


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

    def removed(self) -> list[Removed]:
        """The devices removed and not added again at the same site since."""
        return self._load()[1]

    def add(self, device: Device, *, rotate: bool = False) -> Issued:
        """Issue a password for ``device``; refused if it exists, unless ``rotate``, or if it
        would read the city's own topics (checked here, not when the registry is read: an
        entry from before the rule still loads, and is refused at its next add or rotate)."""
        for topic_filter in device.reads:
            _not_ours(topic_filter, device.topic_prefix)
        if device.username in PRINCIPAL_NAMES:
            raise DeviceRefused(
                f"{device.username} adalah identitas proses / is a process identity "
                f"({', '.join(sorted(PRINCIPAL_NAMES))}); pick another device id"
            )
        with self._locked():
            devices, removed = self._load()
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
            back = (stored.kind, stored.site, stored.device_id)
            self._write(devices, [r for r in removed if (r.kind, r.site, r.device_id) != back])
            return Issued(stored, password, rotated=existing is not None)

    def remove(self, username: str) -> Device:
        with self._locked():
            devices, removed = self._load()
            device = devices.pop(username, None)
            if device is None:
                raise DeviceNotFound(f"{username} tidak terdaftar / not registered")
            now = datetime.now(UTC).replace(microsecond=0)
            removed.append(Removed(device.kind, device.site, device.device_id, now))
            # the ACL first: even a password left behind grants nothing
            self._write(devices, removed)
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
                atomic_write(secret, f"{password}\n".encode(), 0o600)
                issued.append(name)
            self._write(*self._load())
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
        return self._load()[0]

    def _load(self) -> tuple[dict[str, Device], list[Removed]]:
        try:
            data = tomllib.loads(self.path.read_text())
        except FileNotFoundError:
            return {}, []
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
        removed = [_removed_from_toml(entry) for entry in data.get("removed", [])]
        return devices, removed

    def _write(self, devices: dict[str, Device], removed: list[Removed]) -> None:
        registry: dict[str, Any] = {
            "devices": {name: _device_to_toml(d) for name, d in sorted(devices.items())},
        }
        if removed:
            registry["removed"] = [
                {
                    "kind": r.kind,
                    "site": r.site,
                    "device_id": r.device_id,
                    "removed_at": r.removed_at,
                }
                for r in removed
            ]
        header = b"# Written by `wastebank device`; the broker's ACL file is generated from it.\n"
        atomic_write(self.path, header + tomli_w.dumps(registry).encode(), 0o600)
        atomic_write(self.files.acl_file, acl_text(devices.values()).encode(), 0o600)

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


def registry_run_dir(path: Path) -> Path | None:
    """The run dir whose broker files hold the device registry, from either of the two
    directories an operator may name (``[pages] broker_run_dir``): the run dir itself (``.run``,
    ``WASTEBANK_RUN_DIR`` of `wastebank services` and `wastebank device`, where
    ``mosquitto/devices.toml`` is) or the broker's files directory in it (``.run/mosquitto``,
    holding ``devices.toml``, ``passwd`` and ``acl``). None: neither holds a registry. Both
    holding one is refused (:class:`DeviceSetupError`): which one is meant cannot be told."""
    path = path.resolve()
    found = [
        run_dir
        for run_dir in (path, path.parent if path.name == "mosquitto" else None)
        if run_dir is not None and Registry(broker_auth_files(run_dir)).path.is_file()
    ]
    if len(found) > 1:
        paths = " and ".join(str(Registry(broker_auth_files(d)).path) for d in found)
        raise DeviceSetupError(f"dua registri perangkat / two device registries: {paths}")
    return found[0] if found else None


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
        return Device(
            kind=_kind(entry),
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


def _kind(entry: dict[str, Any]) -> DeviceKind:
    kind = entry["kind"]
    if kind not in ("gateway", "sensor"):
        raise DeviceSetupError(f"unknown device kind {kind!r}")
    return cast(DeviceKind, kind)


def _removed_from_toml(entry: dict[str, Any]) -> Removed:
    try:
        return Removed(_kind(entry), entry["site"], entry["device_id"], entry["removed_at"])
    except KeyError as exc:
        raise DeviceSetupError(f"registri rusak / bad removed entry: {exc}") from None


def parse_serves(values: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``TPS/SENSOR`` pairs from the command line."""
    out: list[tuple[str, str]] = []
    for value in values:
        tps, sep, sensor = value.partition("/")
        if not sep:
            raise DeviceRefused(f"perlu TPS/SENSOR / need TPS/SENSOR, got {value!r}")
        check_code(tps, "TPS code")
        check_code(sensor, "sensor id")
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
