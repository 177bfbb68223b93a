"""Mosquitto and InfluxDB 1.x for development, tests and CI, started from the project's own files.

`up` installs the Debian packages when they are missing, writes our own configs under
``run_dir/mosquitto`` and ``run_dir/influxdb``, starts both daemons on ``bind`` with our own ports
and data dirs, and waits until each one answers. A system mosquitto/influxd that the Debian
packages may start (ports 1883, 8086, 8088) is never touched: we only stop what our own pid files
name, and only when that process is the right program running our own config.

Mosquitto has two listeners once the site has certificates (`wastebank certs init`): the loopback
one, anonymous, for the city server's own processes, and a TLS one for gateways and sensors over
the internet, where each device logs in with its own password and may publish only its own topics
(`wastebank device add`, wastebank/devices.py).

PostgreSQL (the ledger of a multi-node city; SQLite needs none) starts only when asked: `up
--with postgresql`, ``postgresql = true`` in the settings (``WASTEBANK_POSTGRESQL=true``), or
``only=("postgres",)`` (the test suite). Its cluster lives in ``run_dir/postgresql/data``, made
with Debian's own ``initdb``; the server runs as the ``postgres`` system user when `up` runs as
root (it refuses root), else as whoever runs `up`, listens on ``bind`` at ``postgresql_port``
(15432, never the system cluster's 5432) and no Unix socket, and has a role and database
``wastebank`` (``postgresql_url``). Every client logs in with a password (scram-sha-256, from
loopback too): the superuser ``postgres`` (`up` itself and the test suite) and ``wastebank``, the
ledger's role (no superuser; it owns the ledger database). `up` keeps their passwords in
``run_dir/secrets/postgres/<role>`` (0600) and sets them on the server (docs/operations.md,
"PostgreSQL roles and passwords").
"""

from __future__ import annotations

import asyncio
import fcntl
import grp
import hashlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Collection, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from stat import S_IXGRP, S_IXOTH, S_IXUSR
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from pydantic import Field, SecretStr

from wastebank import devices, pidfiles
from wastebank.config import (
    BUILTIN_PORTS,
    DEFAULT_INFLUX_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_TLS_PORT,
    DEFAULT_POSTGRESQL_PORT,
    INFLUX_ADMIN,
    INFLUX_ROLES,
    RUN_DIR,
    InfluxSettings,
    WastebankSettings,
    postgresql_secrets_dir,
    read_secret,
    recorded_ports,
)
from wastebank.devices import BrokerAuthFiles as BrokerAuthFiles
from wastebank.devices import broker_auth_files as broker_auth_files
from wastebank.errors import SetupError

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")

MOSQUITTO_BIN = Path("/usr/sbin/mosquitto")
INFLUXD_BIN = Path("/usr/bin/influxd")
PACKAGES = {
    "mosquitto": MOSQUITTO_BIN,
    "influxdb": INFLUXD_BIN,
    # To build the broker's client-id plugin (deploy/mosquitto/wastebank_clientid.c).
    "mosquitto-dev": Path("/usr/include/mosquitto_broker.h"),
    "libmosquitto-dev": Path("/usr/include/mosquitto.h"),
    "gcc": Path("/usr/bin/gcc"),
}
CLIENTID_PLUGIN_SOURCE = (
    Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "wastebank_clientid.c"
)
POSTGRESQL_LIB = Path("/usr/lib/postgresql")  # Debian: <major>/bin/{initdb,postgres}
POSTGRESQL_SUPERUSER = "postgres"  # initdb -U; also the OS user it runs as under root
LEDGER_ROLE = LEDGER_DATABASE = "wastebank"
INFLUX_RPC_OFFSET = 2  # influx_port + 2, like 8086/8088, so we never clash with a system influxd
STOP_TIMEOUT_S = 10.0
MOSQUITTO_MAX_QUEUED_MESSAGES = 3_000_000
MOSQUITTO_MAX_QUEUED_BYTES = 1 << 30  # payload bytes queued per client (< 2**31: no overflow)
MOSQUITTO_MAX_INFLIGHT = 10_000
MOSQUITTO_AUTOSAVE_S = 5
POLL_S = 0.1


class ServiceError(SetupError):
    """A service could not be installed, started or stopped; the message says why."""


class ServicesSettings(WastebankSettings):
    run_dir: Path = RUN_DIR
    bind: str = "127.0.0.1"
    mqtt_port: int = Field(default=DEFAULT_MQTT_PORT, ge=1, le=65535)
    mqtt_tls_port: int = Field(
        default=DEFAULT_MQTT_TLS_PORT,
        ge=1,
        le=65535,
        description="Mosquitto's TLS listener for devices; opened only once certificates exist",
    )
    mqtt_tls_bind: str = Field(
        default="",
        description="address of the TLS listener; empty: every interface (IPv4 and IPv6)",
    )
    influx_port: int = Field(default=DEFAULT_INFLUX_PORT, ge=1, le=65535 - INFLUX_RPC_OFFSET)
    postgresql: bool = Field(
        default=False,
        description="start PostgreSQL too (a multi-node ledger; `services up --with postgresql`)",
    )
    postgresql_port: int = Field(default=DEFAULT_POSTGRESQL_PORT, ge=1, le=65535)
    influx: InfluxSettings = Field(
        default=InfluxSettings(),
        description="the city's InfluxDB database and retention settings `up` creates the "
        "schema with (as the ingester's [influx]); its url is not used: influx_port is",
    )
    broker_principals: tuple[str, ...] = Field(
        default=("ingest", "api", "tps", "sim", "test"),
        description="process identities `up` gives a broker password (in run_dir/secrets/mqtt, "
        "0600); sim and test are for development and tests only (docs/operations.md)",
    )
    install: bool = True
    start_timeout_s: float = Field(default=30.0, gt=0)


@dataclass(frozen=True)
class Service:
    """Where one daemon keeps its files, and how to ask it whether it answers."""

    name: str  # also the process name in /proc/<pid>/comm
    dir: Path
    conf: Path
    pid_file: Path
    log_file: Path
    host: str  # address to connect to
    port: int
    answers: Callable[[str, int], bool]
    # PostgreSQL: SIGINT ("fast" shutdown); its SIGTERM waits until every client has left.
    stop_signal: signal.Signals = signal.SIGTERM


@dataclass(frozen=True)
class ServiceState:
    name: str
    pid: int | None  # our process, alive; None when not running
    host: str
    port: int
    answering: bool

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def healthy(self) -> bool:
        return self.running and self.answering

    def describe(self) -> str:
        pid = f"pid {self.pid}" if self.pid is not None else "pid -"
        running = "berjalan / running" if self.running else "tidak berjalan / not running"
        answering = "menjawab / answering" if self.answering else "tidak menjawab / not answering"
        return f"{self.name:<9} {pid:<10} {self.host}:{self.port}  {running}, {answering}"


# ---- public API -------------------------------------------------------------------------------


ServiceName = Literal["mosquitto", "influxd", "postgres"]


def up(settings: ServicesSettings, only: Collection[ServiceName] | None = None) -> None:
    """Install what is missing; start each daemon unless ours is already running and answering.

    ``only`` limits which daemons start (tests start a private Mosquitto on its own); by default
    Mosquitto and InfluxDB, and PostgreSQL when ``settings.postgresql`` is set.
    """
    claim_ports(settings)
    wanted: set[str] = set(only) if only is not None else {"mosquitto", "influxd"}
    if only is None and settings.postgresql:
        wanted.add("postgres")
    _install_missing(settings, wanted)
    mosquitto, influxd = _services(settings)
    new_passwords = prepare_broker(settings) if mosquitto.name in wanted else []
    postgres = postgres_service(settings)
    starters: list[tuple[Service, Callable[[Service, ServicesSettings], Starting]]] = [
        (mosquitto, _start_mosquitto),
        (influxd, _start_influxd),
        (postgres, _start_postgres),
    ]
    for svc, start in starters:
        if svc.name not in wanted:
            continue
        state = _state(svc)
        if state.pid is not None and not state.answering:  # ours: still starting, or hung
            try:
                _wait_until_answering(svc, settings.start_timeout_s)
            except ServiceError as exc:
                log.warning("%s dimulai ulang / restarting: %s", svc.name, exc)
                _stop(svc, state.pid)
            state = _state(svc)
        if state.healthy and svc is mosquitto and _stale_config(svc, settings):
            # Started from an older config (e.g. before listeners needed passwords): restart.
            log.warning("mosquitto dimulai ulang / restarting: its config changed")
            if state.pid is not None:
                _stop(svc, state.pid)
            state = _state(svc)
        elif state.healthy and svc is mosquitto and new_passwords:
            reload_mosquitto(settings)
        if state.healthy and svc is postgres and _postgres_config_changed(svc, settings):
            # E.g. an older checkout's, which trusted loopback: its start sets the superuser's
            # password first (_start_postgres), the roles' come below.
            log.warning("postgres dimulai ulang / restarting: its config changed")
            if state.pid is not None:
                _stop(svc, state.pid)
            state = _state(svc)
        if state.healthy and svc is influxd and _influxd_config_changed(svc, settings):
            # E.g. an older checkout's, with auth off: its data stays, its users come below.
            log.warning("influxd dimulai ulang / restarting: its config changed")
            if state.pid is not None:
                _stop(svc, state.pid)
            state = _state(svc)
        if state.healthy:
            log.info(
                "%s sudah berjalan / already running on %s:%s (pid %s)",
                svc.name,
                svc.host,
                svc.port,
                state.pid,
            )
            continue
        _remove_stale_pid_file(svc)
        if _port_open(svc.host, svc.port):
            # Never another checkout's daemon: its data, passwords and config are not ours.
            raise ServiceError(
                f"port {svc.host}:{svc.port} sudah dipakai proses lain / already in use by "
                f"another process; pick another {svc.name} port, or delete "
                f"{settings.run_dir / 'ports.toml'} so `up` chooses free ones"
            )
        _server_home(svc.dir, _postgres_os_user() if svc is postgres else None)
        child = start(svc, settings)
        pid = _wait_until_answering(svc, settings.start_timeout_s, child)
        log.info("%s berjalan / running on %s:%s (pid %s)", svc.name, svc.host, svc.port, pid)
    if influxd.name in wanted:
        prepare_influxdb(settings)
    if postgres.name in wanted:
        prepare_postgresql(postgres, settings)


PORT_FIELDS = {
    "mqtt": "mqtt_port",
    "influx": "influx_port",
    "postgresql": "postgresql_port",
    "mqtt_tls": "mqtt_tls_port",
}


def claim_ports(settings: ServicesSettings) -> dict[str, int]:
    """This checkout's ports, recorded in ``run_dir/ports.toml`` by its first `up`.

    Each service keeps its built-in port (11883, 18086, 15432, 18883) when that is free or
    already ours, or when the settings name another port; a built-in port some other program
    holds (another checkout's services, a system daemon) is replaced by a free one. Every
    process of the checkout reads the file for its defaults (wastebank/config.py), so two
    checkouts on one machine never share a daemon. ``settings`` is updated in place.
    """
    path = settings.run_dir / "ports.toml"
    if path.exists():
        return recorded_ports(path)
    mosquitto, influxd = _services(settings)
    ours = {
        "mqtt": _our_pid(mosquitto),
        "influx": _our_pid(influxd),
        "postgresql": _our_pid(postgres_service(settings)),
        "mqtt_tls": _our_pid(mosquitto),
    }
    chosen: dict[str, int] = {}
    for name, field in PORT_FIELDS.items():
        port = getattr(settings, field)
        if port == BUILTIN_PORTS[name] and ours[name] is None and _port_taken(name, port):
            port = _free_port(name)
            log.info(
                "port %s %s dipakai, memakai / taken, using %s", name, BUILTIN_PORTS[name], port
            )
            setattr(settings, field, port)
        chosen[name] = port
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by the first `wastebank services up` of this checkout; delete to choose again."
    ]
    lines += [f"{name} = {port}" for name, port in chosen.items()]
    path.write_text("\n".join(lines) + "\n")
    return chosen


def _port_taken(name: str, port: int) -> bool:
    ports = (port, port + INFLUX_RPC_OFFSET) if name == "influx" else (port,)
    return any(_port_open("127.0.0.1", p) for p in ports)


def _free_port(name: str) -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port <= 65535 - INFLUX_RPC_OFFSET and not _port_taken(name, port):
            return port


def down(settings: ServicesSettings) -> None:
    """Stop the daemons named by our pid files; leave anything else alone."""
    for svc in (*_services(settings), postgres_service(settings)):
        pid = _our_pid(svc)
        if pid is None:
            log.info("%s tidak berjalan / not running", svc.name)
        else:
            log.info("menghentikan / stopping %s (pid %s)", svc.name, pid)
            _stop(svc, pid)
            log.info("%s berhenti / stopped", svc.name)
        svc.pid_file.unlink(missing_ok=True)


def status(settings: ServicesSettings) -> list[ServiceState]:
    """Mosquitto and InfluxDB; PostgreSQL too when it is asked for or ours is running."""
    states = [_state(svc) for svc in _services(settings)]
    postgres = postgres_service(settings)
    if settings.postgresql or _our_pid(postgres) is not None:
        states.append(_state(postgres))
    return states


def reload_mosquitto(settings: ServicesSettings, timeout_s: float = 5.0) -> int | None:
    """:func:`wastebank.devices.reload_mosquitto` of these settings' run dir."""
    return devices.reload_mosquitto(settings.run_dir, timeout_s)


def _stale_config(svc: Service, settings: ServicesSettings) -> bool:
    try:
        return svc.conf.read_text() != mosquitto_conf(svc, settings)
    except FileNotFoundError:
        return True


def mosquitto_tls_listening(settings: ServicesSettings) -> bool:
    """:func:`wastebank.devices.mosquitto_tls_listening` of these settings' run dir."""
    return devices.mosquitto_tls_listening(settings.run_dir)


# ---- layout and configs -----------------------------------------------------------------------


def _services(settings: ServicesSettings) -> tuple[Service, Service]:
    run_dir = settings.run_dir.resolve()
    host = "127.0.0.1" if settings.bind in ("", "0.0.0.0") else settings.bind  # noqa: S104
    host = "::1" if host == "::" else host
    mfiles, idir = devices.mosquitto_files(run_dir), run_dir / "influxdb"
    mosquitto = Service(
        name="mosquitto",
        dir=mfiles.dir,
        conf=mfiles.conf,
        pid_file=mfiles.pid_file,
        log_file=mfiles.log_file,
        host=host,
        port=settings.mqtt_port,
        answers=_mqtt_answers,
    )
    influxd = Service(
        name="influxd",
        dir=idir,
        conf=idir / "influxdb.conf",
        pid_file=idir / "influxd.pid",
        log_file=idir / "influxd.log",
        host=host,
        port=settings.influx_port,
        answers=_influx_answers,
    )
    return mosquitto, influxd


def mosquitto_conf(svc: Service, settings: ServicesSettings) -> str:
    """Our Mosquitto config: no anonymous client on any listener; every client logs in with its
    own password, may use only its own topics (the ACL) and only client ids of its own (the
    plugin). With certificates (`wastebank certs init`) a TLS listener for devices is added."""
    # Running as root, mosquitto would drop to user "mosquitto", which cannot write our run_dir;
    # naming the current user keeps it as whoever ran `up` (no effect when not root).
    user = _current_user()
    files = broker_auth_files(settings.run_dir)
    tls = files.tls_ready
    return f"""\
# Written by `wastebank services up`; edits are overwritten.
# Each listener has its own authentication and ACL settings: the security options below a
# listener line apply to it. Must come before any of them: a security option above every
# listener line would open Mosquitto's default listener (port 1883, every interface) with it.
per_listener_settings true
user {user}
pid_file {svc.pid_file}
persistence true
persistence_location {svc.dir / "data"}/
# Every autosave_interval s the whole in-memory store is written (measured: a ~0.1 s pause
# with 100,000 queued messages); a crash loses at most that much of what was acknowledged.
autosave_interval {MOSQUITTO_AUTOSAVE_S}
# A persistent session (the ingester's) keeps its QoS 1 backlog while it is away. Past either
# limit Mosquitto drops further messages for that client, logging one NOTICE "Outgoing messages
# are being dropped"; its default of 1000 queued messages lost most of an outage. Bounded, not 0
# ("no maximum"): 0 has broken delivery in several 2.0.x releases (mosquitto #1956, #2879, #3244).
# Per client, a few million small readings, ~{MOSQUITTO_MAX_QUEUED_BYTES >> 30} GiB of payload.
max_queued_messages {MOSQUITTO_MAX_QUEUED_MESSAGES}
max_queued_bytes {MOSQUITTO_MAX_QUEUED_BYTES}
# QoS 1 messages sent to one client and not yet acknowledged. The ingester acknowledges a
# message only after writing its batch, so this window must exceed its batch size or every batch
# waits for its age limit; bounded so a backlog reaches it as backpressure, not all at once.
max_inflight_messages {MOSQUITTO_MAX_INFLIGHT}
# Nagle off: small packets (PUBACKs, small PUBLISHes) go out at once, not held behind an
# unacknowledged segment (issue 4: a pipelined QoS 1 publisher was capped at ~670 msg/s).
set_tcp_nodelay true
# persistent_client_expiration is left unset on purpose: a session is never expired, however
# long its ingester is away.
log_dest file {svc.log_file}
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S

# The city server's own processes (ingest, api, tps watch; simulators and tests in
# development), each with its own password (run_dir/secrets/mqtt, `up` makes them).
listener {settings.mqtt_port} {settings.bind}
{_security(settings)}{_tls_listener(settings, files) if tls else ""}"""


def _security(settings: ServicesSettings) -> str:
    """What every listener checks, in this order: the client id belongs to the username (the
    plugin refuses anything else before a session is touched), then the password, then the ACL."""
    files = broker_auth_files(settings.run_dir)
    # The source's digest in the config: a new plugin makes the config stale, so `up` restarts
    # the broker (Mosquitto loads a plugin once, at start; a reload keeps the old one).
    source = hashlib.sha256(CLIENTID_PLUGIN_SOURCE.read_bytes()).hexdigest()[:16]
    return f"""allow_anonymous false
allow_zero_length_clientid false
# plugin source sha256 {source}
plugin {clientid_plugin_path(settings.run_dir)}
password_file {files.password_file}
acl_file {files.acl_file}
"""


def _tls_listener(settings: ServicesSettings, files: BrokerAuthFiles) -> str:
    listener = f"{settings.mqtt_tls_port} {settings.mqtt_tls_bind}".rstrip()
    return f"""
# Gateways and sensors over the internet: TLS with the site's certificate, a password per device
# (`wastebank device add`), and an ACL that lets each publish only under its own ids.
listener {listener}
certfile {files.server_cert}
keyfile {files.server_key}
tls_version tlsv1.2
{_security(settings)}"""


def clientid_plugin_path(run_dir: Path) -> Path:
    return run_dir.resolve() / "mosquitto" / "wastebank_clientid.so"


def build_clientid_plugin(run_dir: Path) -> Path:
    """Compile deploy/mosquitto/wastebank_clientid.c for this machine's Mosquitto, unless the
    library there was built from the same source (its SHA-256 is kept beside it)."""
    out = clientid_plugin_path(run_dir)
    stamp = out.with_suffix(".sha256")
    digest = hashlib.sha256(CLIENTID_PLUGIN_SOURCE.read_bytes()).hexdigest()
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(out), str(CLIENTID_PLUGIN_SOURCE)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(
            "plugin client-id Mosquitto gagal dibangun / the broker's client-id plugin failed "
            f"to build (needs gcc, mosquitto-dev, libmosquitto-dev): {result.stderr.strip()}"
        )
    stamp.write_text(digest + "\n")
    log.info("plugin client-id dibangun / client-id plugin built: %s", out)
    return out


def prepare_broker(settings: ServicesSettings) -> list[str]:
    """Everything Mosquitto reads besides its config: the plugin, the password and ACL files,
    and a password for each process identity in ``broker_principals``. Returns the identities
    that got a new password (a running broker must re-read its files)."""
    build_clientid_plugin(settings.run_dir)
    files = broker_auth_files(settings.run_dir)
    files.password_file.parent.mkdir(parents=True, exist_ok=True)
    for path in (files.password_file, files.acl_file):
        if not path.exists():  # Mosquitto refuses to start without them
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
    return devices.Registry(files).ensure_principals(
        settings.broker_principals, mqtt_secrets_dir(settings.run_dir)
    )


def mqtt_secrets_dir(run_dir: Path) -> Path:
    """Where the process identities' broker passwords are (``MqttSettings.credentials_dir``)."""
    return run_dir.resolve() / "secrets" / "mqtt"


def influxdb_conf(svc: Service, settings: ServicesSettings) -> str:
    def q(value: object) -> str:  # TOML basic string; JSON escaping is a subset of it
        return json.dumps(str(value))

    rpc = f"127.0.0.1:{settings.influx_port + INFLUX_RPC_OFFSET}"
    return f"""\
# Written by `wastebank services up`; edits are overwritten. InfluxDB 1.6 keys.
# Upstream 1.6 reads reporting-disabled; Debian's build renamed it to reporting-enabled (default
# false). Unknown keys are ignored, so both are set.
reporting-disabled = true
reporting-enabled = false
bind-address = {q(rpc)}

[meta]
  dir = {q(svc.dir / "meta")}

[data]
  dir = {q(svc.dir / "data")}
  wal-dir = {q(svc.dir / "wal")}
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = {q(f"{settings.bind}:{settings.influx_port}")}
  # Every client logs in: admin, ingest, api, tps (`up` makes them; docs/operations.md,
  # "InfluxDB users"). /ping answers without a login (the health checks).
  auth-enabled = true
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = true
"""


def _influxd_config_changed(svc: Service, settings: ServicesSettings) -> bool:
    try:
        return svc.conf.read_text() != influxdb_conf(svc, settings)
    except FileNotFoundError:
        return True


# ---- InfluxDB users, passwords and schema -------------------------------------------------------


INFLUX_PASSWORD_BYTES = 24  # token_urlsafe: 32 characters, nothing to escape in InfluxQL


def influx_secrets_dir(run_dir: Path) -> Path:
    """Where the InfluxDB users' passwords are (``InfluxSettings.credentials_dir``)."""
    return run_dir.resolve() / "secrets" / "influxdb"


def influx_users() -> tuple[str, ...]:
    """Every InfluxDB user `up` keeps: the admin, then one per process role."""
    return (INFLUX_ADMIN, *INFLUX_ROLES)


def influx_admin_settings(
    settings: ServicesSettings, database: str | None = None
) -> InfluxSettings:
    """How to reach our InfluxDB as its admin (the password from its 0600 file)."""
    svc = _services(settings)[1]
    host = f"[{svc.host}]" if ":" in svc.host else svc.host
    return settings.influx.model_copy(
        update={
            "url": f"http://{host}:{svc.port}",
            "database": database or settings.influx.database,
            "username": INFLUX_ADMIN,
            "password": SecretStr(read_secret(influx_secrets_dir(settings.run_dir) / INFLUX_ADMIN)),
            "password_file": None,
            "credentials_dir": influx_secrets_dir(settings.run_dir),
            "token": None,
        }
    )


def _influx_passwords(run_dir: Path) -> dict[str, str]:
    """Each user's password from ``secrets/influxdb/<user>`` (0600, the folder 0700), a new
    one written for a user who has none."""
    directory = influx_secrets_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    passwords: dict[str, str] = {}
    for user in influx_users():
        path = directory / user
        if not path.is_file():
            _write_secret_file(path, secrets.token_urlsafe(INFLUX_PASSWORD_BYTES))
            log.info("kata sandi InfluxDB baru / new InfluxDB password: %s", path)
        passwords[user] = read_secret(path)
    return passwords


def prepare_influxdb(settings: ServicesSettings, databases: Collection[str] = ()) -> None:
    """Our InfluxDB's users, schema and grants (it must be answering); idempotent.

    The admin (created as the first user when there is none: a new data dir, or an older one
    from when auth was off), a user per process role with its password from its file (set
    again when the file changed: how a password is rotated), the city database's retention
    policies and continuous queries (``settings.influx``; also each of ``databases``), and
    each role's grant on them. One `up` at a time per run_dir (a lock file)."""
    svc = _services(settings)[1]
    with (svc.dir / "setup.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        passwords = _influx_passwords(settings.run_dir)
        names = [settings.influx.database, *(d for d in databases if d != settings.influx.database)]
        _run_async(_setup_influxdb(settings, passwords, names))


async def _setup_influxdb(
    settings: ServicesSettings, passwords: dict[str, str], databases: list[str]
) -> None:
    from wastebank.influx import (
        Influx,
        InfluxError,
        bootstrap_admin,
        ensure_schema,
        ensure_user,
        grant,
    )

    admin = influx_admin_settings(settings)
    try:
        if await bootstrap_admin(admin):
            log.info("admin InfluxDB dibuat / InfluxDB admin created: %s", INFLUX_ADMIN)
        influx = Influx(admin)
        try:
            for user in INFLUX_ROLES:
                done = await ensure_user(influx, user, passwords[user])
                if done != "kept":
                    log.info("pengguna InfluxDB / InfluxDB user %s: %s", user, done)
            for database in databases:
                scoped = admin.model_copy(update={"database": database})
                await ensure_schema(influx, scoped)  # statements name the database
                await grant(influx, database, INFLUX_ROLES)
        finally:
            await influx.aclose()
    except InfluxError as exc:
        raise ServiceError(f"InfluxDB: pengguna/skema / users and schema: {exc}") from exc


def rotate_influx_password(settings: ServicesSettings, user: str) -> Path:
    """Give ``user`` (admin, ingest, api, tps) a new password on our InfluxDB and in its file;
    returns the file. Its processes log in with the new one once restarted. The new password is
    written beside the file first, so a failure halfway never leaves the server with a
    password no file holds."""
    from wastebank.influx import Influx, InfluxError, ident, influxql_string

    if user not in influx_users():
        raise ServiceError(
            f"pengguna InfluxDB tak dikenal / unknown InfluxDB user {user!r}; one of "
            f"{', '.join(influx_users())}"
        )
    svc = _services(settings)[1]
    with (svc.dir / "setup.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _influx_passwords(settings.run_dir)
        admin = influx_admin_settings(settings)
        path = influx_secrets_dir(settings.run_dir) / user
        pending = path.with_name(f".{user}.new")
        password = secrets.token_urlsafe(INFLUX_PASSWORD_BYTES)
        _write_secret_file(pending, password)

        async def set_password() -> None:
            influx = Influx(admin)
            try:
                await influx.execute(
                    f"SET PASSWORD FOR {ident(user)} = {influxql_string(password)}", secret=True
                )
            finally:
                await influx.aclose()

        try:
            _run_async(set_password())
        except InfluxError as exc:
            pending.unlink(missing_ok=True)
            raise ServiceError(f"InfluxDB: kata sandi / password of {user}: {exc}") from exc
        pending.replace(path)
    return path


def _write_secret_file(path: Path, password: str) -> None:
    """``password`` in a new file only its owner may read (0600, whatever the umask)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{password}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from sync code, also when this thread has a running loop."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is None:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# ---- install ----------------------------------------------------------------------------------


def _install_missing(settings: ServicesSettings, services: Collection[str]) -> None:
    """apt-get install the Debian packages of ``services`` (daemon names) that are missing."""
    needed = {
        "mosquitto": ("mosquitto", "mosquitto-dev", "libmosquitto-dev", "gcc"),
        "influxd": ("influxdb",),
        "postgres": ("postgresql",),
    }
    missing = [
        pkg for name in needed if name in services for pkg in needed[name] if not _installed(pkg)
    ]
    if not missing:
        return
    names = " ".join(missing)
    if not settings.install:
        raise ServiceError(
            f"{names} belum terpasang / not installed, and install is off "
            f"(sudo apt-get install {names})"
        )
    if shutil.which("apt-get") is None:
        raise ServiceError(f"{names} not installed and apt-get not found; install them by hand")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    log.info("memasang / installing %s (apt-get)", names)
    _run([*sudo, "apt-get", "update"])
    _run(
        [
            *sudo,
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            *missing,
        ]
    )
    still_missing = [pkg for pkg in missing if not _installed(pkg)]
    if still_missing:
        raise ServiceError(f"apt-get finished but {' '.join(still_missing)} is still missing")
    log.info("%s terpasang / installed", names)


def _installed(package: str) -> bool:
    if package == "postgresql":
        return _postgresql_bindir() is not None
    return PACKAGES[package].exists()


def _run(cmd: list[str]) -> None:
    try:
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ServiceError(f"gagal / failed: {' '.join(cmd)}: {exc}") from exc


# ---- start, wait, stop ------------------------------------------------------------------------


def _start_mosquitto(svc: Service, settings: ServicesSettings) -> subprocess.Popen[bytes] | None:
    (svc.dir / "data").mkdir(exist_ok=True)
    files = broker_auth_files(settings.run_dir)
    if files.tls_ready:
        tls_host = settings.mqtt_tls_bind or "127.0.0.1"
        if tls_host in ("0.0.0.0", "::"):  # noqa: S104
            tls_host = "127.0.0.1"
        if _port_open(tls_host, settings.mqtt_tls_port):
            raise ServiceError(
                f"port TLS {settings.mqtt_tls_port} sudah dipakai proses lain / TLS port already "
                "in use by another process; set mqtt_tls_port (WASTEBANK_MQTT_TLS_PORT)"
            )
        log.info(
            "listener TLS / TLS listener on port %s (%s)",
            settings.mqtt_tls_port,
            settings.mqtt_tls_bind or "semua antarmuka / every interface",
        )
    else:
        log.info(
            "belum ada sertifikat, listener TLS dilewati / no certificates, TLS listener "
            "skipped (wastebank certs init)"
        )
    svc.conf.write_text(mosquitto_conf(svc, settings))
    log.info("memulai / starting mosquitto on %s:%s", svc.host, svc.port)
    # -d: mosquitto forks, the child writes pid_file; errors after the fork go to log_file.
    result = subprocess.run(
        [str(MOSQUITTO_BIN), "-c", str(svc.conf), "-d"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"mosquitto gagal mulai / failed to start (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}\n{_log_tail(svc)}"
        )
    return None  # daemonized: not our child


def _start_influxd(svc: Service, settings: ServicesSettings) -> subprocess.Popen[bytes] | None:
    for sub in ("meta", "data", "wal"):
        (svc.dir / sub).mkdir(exist_ok=True)
    svc.conf.write_text(influxdb_conf(svc, settings))
    log.info("memulai / starting influxd on %s:%s", svc.host, svc.port)
    with svc.log_file.open("ab") as log_fh:
        proc = subprocess.Popen(
            [str(INFLUXD_BIN), "run", "-config", str(svc.conf), "-pidfile", str(svc.pid_file)],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pidfiles.track_child(proc)
    return proc


def _wait_until_answering(
    svc: Service, timeout_s: float, child: subprocess.Popen[bytes] | None = None
) -> int:
    deadline = time.monotonic() + timeout_s
    pid: int | None = None
    while time.monotonic() < deadline:
        pid = _our_pid(svc)
        if pid is not None and svc.answers(svc.host, svc.port):
            return pid
        if child is not None and child.poll() is not None:
            pidfiles.forget_child(child.pid)
            raise ServiceError(f"{svc.name} berhenti / exited while starting\n{_log_tail(svc)}")
        time.sleep(POLL_S)
    raise ServiceError(
        f"{svc.name} tidak menjawab / did not answer on {svc.host}:{svc.port} within "
        f"{timeout_s:.0f} s (pid {pid})\n{_log_tail(svc)}"
    )


def _stop(svc: Service, pid: int) -> None:
    for sig, wait_s in ((svc.stop_signal, STOP_TIMEOUT_S), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and pidfiles.alive(pid):
            time.sleep(POLL_S)
        if not pidfiles.alive(pid):
            break
        log.warning("%s (pid %s) tidak berhenti / ignored %s", svc.name, pid, sig.name)
    if pidfiles.alive(pid):
        raise ServiceError(f"{svc.name} (pid {pid}) did not stop, even after SIGKILL")
    pidfiles.forget_child(pid)


def _remove_stale_pid_file(svc: Service) -> None:
    if svc.pid_file.exists() and _our_pid(svc) is None:
        log.info("menghapus / removing stale %s", svc.pid_file)
        svc.pid_file.unlink(missing_ok=True)


# ---- process and health checks ----------------------------------------------------------------


def _state(svc: Service) -> ServiceState:
    pid = _our_pid(svc)
    answering = pid is not None and svc.answers(svc.host, svc.port)
    return ServiceState(svc.name, pid, svc.host, svc.port, answering)


def _our_pid(svc: Service) -> int | None:
    """The pid in our pid file, if that process is alive, is `svc.name` and runs our config."""
    return pidfiles.our_pid(svc.pid_file, svc.name, svc.conf)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _mqtt_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """A real MQTT CONNECT that gets a CONNACK. Anonymous, so the answer is a refusal ("Not
    authorized"): a broker that answers, whoever it lets in."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"wastebank-health-{os.getpid()}")
    client.connect_timeout = timeout_s
    answered: list[bool] = []
    client.on_connect = lambda *_args: answered.append(True)
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return False
    try:
        deadline = time.monotonic() + timeout_s
        while not answered and time.monotonic() < deadline:
            if client.loop(timeout=POLL_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                break
        return bool(answered)
    finally:
        client.disconnect()
        client.loop(timeout=0.0)
        sock = client.socket()
        if sock is not None and isinstance(sock, socket.socket):
            sock.close()


def _influx_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """GET /ping answers 204 with an X-Influxdb-Version header."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        resp = httpx.get(f"http://{netloc}/ping", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return resp.status_code == 204 and "X-Influxdb-Version" in resp.headers


def _log_tail(svc: Service, lines: int = 30) -> str:
    try:
        text = svc.log_file.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {svc.log_file})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of / baris terakhir {svc.log_file} ---\n{tail}"


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# ---- PostgreSQL (optional: the ledger of a multi-node city) ------------------------------------

Starting = subprocess.Popen[bytes] | None  # what a _start_* returns: our child, or None (forked)


def postgres_service(settings: ServicesSettings) -> Service:
    """Our PostgreSQL: ``run_dir/postgresql`` holds the configs (the directory given with ``-D``,
    so it names our server on its command line), ``data/`` the cluster.

    Run as root, the server is the ``postgres`` user's, which must be able to enter that
    directory; when one above it is closed to that user (a 0700 home or temporary directory),
    the cluster lives in ``~postgres/wastebank/<hash of the run_dir>`` instead.
    """
    pdir = settings.run_dir.resolve() / "postgresql"
    user = _postgres_system_user()
    if user is not None and not _enterable(pdir, user):
        digest = hashlib.sha256(os.fsencode(pdir)).hexdigest()[:12]
        pdir = Path(user.pw_dir) / "wastebank" / digest
    return Service(
        name="postgres",
        dir=pdir,
        conf=pdir,
        # external_pid_file: the pid alone (postmaster.pid has more lines)
        pid_file=pdir / "data" / "postgres.pid",
        log_file=pdir / "postgres.log",
        host=_services(settings)[0].host,
        port=settings.postgresql_port,
        answers=_postgres_answers,
        stop_signal=signal.SIGINT,
    )


def postgresql_url(
    settings: ServicesSettings, database: str = LEDGER_DATABASE, role: str = LEDGER_ROLE
) -> str:
    """A URL of our PostgreSQL as ``role``: by default the ledger's (``WASTEBANK_LEDGER_URL``).
    Never with the password in it: a process reads that from ``run_dir/secrets/postgres/<role>``
    (:func:`wastebank.ledger.make_engine`, :func:`connect_postgresql`)."""
    svc = postgres_service(settings)
    host = f"[{svc.host}]" if ":" in svc.host else svc.host
    return f"postgresql+psycopg://{role}@{host}:{svc.port}/{database}"


def connect_postgresql(
    settings: ServicesSettings,
    role: str = POSTGRESQL_SUPERUSER,
    database: str = "postgres",
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A psycopg connection to our PostgreSQL as ``role`` (the superuser by default), with the
    password `up` keeps for it."""
    import psycopg

    svc = postgres_service(settings)
    try:
        password = read_secret(postgresql_secrets_dir(settings.run_dir) / role)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"kata sandi PostgreSQL / PostgreSQL password: {exc}") from None
    return psycopg.connect(
        host=svc.host, port=svc.port, user=role, dbname=database, password=password, **kwargs
    )


POSTGRESQL_PASSWORD_BYTES = 24  # token_urlsafe: 32 characters, nothing to quote anywhere


def postgresql_passwords(run_dir: Path) -> dict[str, str]:
    """The superuser's and the ledger role's passwords, from ``secrets/postgres/<role>`` (0600,
    the folder 0700); a new one written for a role that has none (`up` then sets it on the
    server: how a password is rotated). A file is made whole or not at all, and never replaced,
    so two `up`s at once agree on it."""
    directory = postgresql_secrets_dir(run_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    passwords: dict[str, str] = {}
    for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE):
        path = directory / role
        if not path.exists():
            tmp = directory / f".{role}.{os.getpid()}.new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)  # whatever the umask
                os.write(fd, f"{secrets.token_urlsafe(POSTGRESQL_PASSWORD_BYTES)}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)  # fails when another `up` made it meanwhile: its stays
                log.info("kata sandi PostgreSQL baru / new PostgreSQL password: %s", path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        try:
            passwords[role] = read_secret(path)
        except (OSError, ValueError) as exc:
            raise ServiceError(f"kata sandi PostgreSQL / PostgreSQL password: {exc}") from None
    return passwords


def postgresql_conf(svc: Service, settings: ServicesSettings) -> str:
    def q(value: object) -> str:  # a quoted GUC string
        return "'" + str(value).replace("'", "''") + "'"

    listen = {"": "*", "0.0.0.0": "0.0.0.0", "::": "*"}.get(settings.bind, settings.bind)  # noqa: S104
    return f"""\
# Written by `wastebank services up`; edits are overwritten.
data_directory = {q(svc.dir / "data")}
hba_file = {q(svc.dir / "pg_hba.conf")}
ident_file = {q(svc.dir / "pg_ident.conf")}
external_pid_file = {q(svc.pid_file)}
listen_addresses = {q(listen)}
port = {svc.port}
# TCP only: /var/run/postgresql belongs to the system's cluster.
unix_socket_directories = ''
# ingesters, API workers and the test suite's per-test databases, each with a small pool
max_connections = 200
# pg_hba.conf asks every client for its password; kept as SCRAM verifiers (the default since
# PostgreSQL 14; said so for older majors)
password_encryption = 'scram-sha-256'
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_checkpoints = off
"""


def pg_hba_conf() -> str:
    return """\
# Written by `wastebank services up`; edits are overwritten.
# Every client logs in with its role's password, loopback too (a process of another user or
# checkout on this machine is not ours): the superuser postgres (`services up`, the tests) and
# the ledger's role wastebank; the passwords are in .run/secrets/postgres/ (docs/operations.md,
# "PostgreSQL roles and passwords"). TCP only: there is no Unix socket (postgresql.conf).
host all all all scram-sha-256
"""


def _postgres_config_changed(svc: Service, settings: ServicesSettings) -> bool:
    """Whether the configs our server runs with differ from this release's (e.g. an older
    checkout's pg_hba.conf, which trusted loopback)."""
    try:
        return (svc.dir / "pg_hba.conf").read_text() != pg_hba_conf() or (
            svc.dir / "postgresql.conf"
        ).read_text() != postgresql_conf(svc, settings)
    except FileNotFoundError:
        return True


def _postgresql_bindir(major: str | None = None) -> Path | None:
    """Debian's server binaries: of ``major``, or the newest installed."""
    found = sorted(
        (p.parent for p in POSTGRESQL_LIB.glob("*/bin/postgres")),
        key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0,
    )
    if major is not None:
        found = [bindir for bindir in found if bindir.parent.name == major]
    return found[-1] if found else None


def _postgres_system_user() -> pwd.struct_passwd | None:
    """The ``postgres`` system user when we are root (and it exists), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRESQL_SUPERUSER)
    except KeyError:
        return None


def _postgres_os_user() -> pwd.struct_passwd | None:
    """Whom the server runs as: the ``postgres`` system user when we are root, else us (None)."""
    if os.geteuid() != 0:
        return None
    user = _postgres_system_user()
    if user is None:
        raise ServiceError(
            "PostgreSQL tidak boleh berjalan sebagai root / refuses to run as root, and there "
            f"is no {POSTGRESQL_SUPERUSER!r} user to run it as (Debian's postgresql package "
            "creates it)"
        )
    return user


def _enterable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may enter ``path`` and every directory above it (ones not made yet are
    made 0755 by us)."""
    groups = {user.pw_gid, *(g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem)}
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.pw_uid:
            bit = S_IXUSR
        elif st.st_gid in groups:
            bit = S_IXGRP
        else:
            bit = S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _as(user: pwd.struct_passwd | None) -> tuple[int | None, int | None, list[int] | None]:
    """Popen's user, group and extra_groups to run a child as ``user`` (None: as ourselves)."""
    return (None, None, None) if user is None else (user.pw_uid, user.pw_gid, [])


def _start_postgres(svc: Service, settings: ServicesSettings) -> Starting:
    data = svc.dir / "data"
    user = _postgres_os_user()
    version_file = data / "PG_VERSION"
    major = version_file.read_text().strip() if version_file.exists() else None
    bindir = _postgresql_bindir(major)
    if bindir is None:
        raise ServiceError(
            f"PostgreSQL {major or ''} server not found under {POSTGRESQL_LIB} "
            f"(the cluster in {data} needs it)".replace("  ", " ")
        )
    superuser_password = postgresql_passwords(settings.run_dir)[POSTGRESQL_SUPERUSER]
    if major is None:
        _initdb(bindir, data, user, superuser_password)
    for name, text in (
        ("postgresql.conf", postgresql_conf(svc, settings)),
        ("pg_hba.conf", pg_hba_conf()),
        ("pg_ident.conf", "# Written by `wastebank services up`.\n"),
    ):
        (svc.dir / name).write_text(text)
        if user is not None:  # 0600 under the CLI's umask: the server's to read
            os.chown(svc.dir / name, user.pw_uid, user.pw_gid)
    if major is not None:
        # Before any client may log in, the superuser's password from its file: an older
        # checkout's cluster (loopback trusted, no passwords) is migrated so, and a rotated
        # or lost password file made the server's again.
        _set_superuser_password(bindir, svc, user, superuser_password)
    log.info("memulai / starting postgres on %s:%s (%s)", svc.host, svc.port, data)
    uid, gid, groups = _as(user)
    with svc.log_file.open("ab") as log_fh:
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(svc.conf)],
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=svc.dir,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    pidfiles.track_child(proc)
    return proc


def _server_home(directory: Path, user: pwd.struct_passwd | None) -> None:
    """Make ``directory`` and the parents it lacks, each the server's user's own: made by root
    under the CLI's umask 077 they would be closed to it."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for made in reversed(missing):
        made.mkdir(mode=0o700)
        if user is not None:
            os.chown(made, user.pw_uid, user.pw_gid)


def _initdb(bindir: Path, data: Path, user: pwd.struct_passwd | None, password: str) -> None:
    """A new cluster in ``data`` whose superuser has ``password`` from the start."""
    data.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(data, user.pw_uid, user.pw_gid)
    data.chmod(0o700)
    log.info("membuat klaster / creating the PostgreSQL cluster in %s", data)
    uid, gid, groups = _as(user)
    # initdb reads the password from a file the server's user can open (not our pipe: a pipe
    # made by root is root's): beside the data dir, in a directory only that user may enter.
    pwfile = data.parent / ".initdb-password"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, f"{password}\n".encode())
        if user is not None:
            os.fchown(fd, user.pw_uid, user.pw_gid)
    finally:
        os.close(fd)
    try:
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(data),
                "--username",
                POSTGRESQL_SUPERUSER,
                "--pwfile",
                str(pwfile),
                # The data dir's pg_hba.conf is not used (ours is: svc.dir/pg_hba.conf); it
                # asks for a password too, should anyone start the cluster without ours.
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C.UTF-8",
                "--no-instructions",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            cwd=data,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        hint = f" (the {user.pw_name} user must be able to reach it)" if user is not None else ""
        raise ServiceError(
            f"initdb gagal / failed for {data}{hint} (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )


def _set_superuser_password(
    bindir: Path, svc: Service, user: pwd.struct_passwd | None, password: str
) -> None:
    """Set the superuser's password in single-user mode (our server is not running: no client
    can log in meanwhile, and none needs a password to do it). The statement goes to its stdin,
    never its command line; no log line quotes it (``log_min_error_statement``)."""
    literal = "'" + password.replace("'", "''") + "'"
    uid, gid, groups = _as(user)
    result = subprocess.run(
        [
            str(bindir / "postgres"),
            "--single",
            "-D",
            str(svc.conf),
            "-c",
            "exit_on_error=on",
            "-c",
            "log_min_error_statement=panic",
            "-c",
            "password_encryption=scram-sha-256",
            "postgres",
        ],
        input=f"ALTER ROLE {POSTGRESQL_SUPERUSER} PASSWORD {literal}\n",
        capture_output=True,
        text=True,
        check=False,
        cwd=svc.dir,
        user=uid,
        group=gid,
        extra_groups=groups,
    )
    if result.returncode != 0:
        raise ServiceError(
            f"kata sandi superuser tidak dapat diatur / could not set the {POSTGRESQL_SUPERUSER} "
            f"password (postgres --single, exit {result.returncode}): {result.stderr.strip()}"
        )


def _postgres_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """Whether the server accepts connections (libpq's ``PQping``, as ``pg_isready``): it
    answers before anyone logs in, so it needs no password."""
    try:
        from psycopg import pq
    except ImportError:
        raise ServiceError(
            "psycopg tidak terpasang / is not installed: pip install 'wastebank[postgresql]'"
        ) from None
    params = f"host={host} port={port} dbname=postgres connect_timeout={max(2, round(timeout_s))}"
    return bool(pq.PGconn.ping(params.encode()) == pq.Ping.OK)


LEDGER_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
"""The ledger's role logs in and owns the ledger database (its migrations run as it), nothing
more. Not even CREATEDB: the test suite makes its databases as the superuser (the operator, in
a test) and gives each to this role, so the role the processes use is no stronger in tests than
in production."""
_ROLES_LOCK = 0x7762_726F_6C65  # pg_advisory_lock key ("wbrole"): one `up` at a time


class _PasswordRefused(ServiceError):
    """The server refused the superuser's password from its file (`up` then restarts our
    server, whose start sets it)."""


def prepare_postgresql(svc: Service, settings: ServicesSettings) -> None:
    """The ledger's role (``LEDGER_ROLE_ATTRIBUTES``) with the password in its file, and the
    ledger database, owned by it; idempotent (each `up` sets the password again: how it is
    rotated). Logs in as the superuser; should the server refuse its password (the file was
    replaced or lost while the server ran), restarts our server, whose start sets it."""
    passwords = postgresql_passwords(settings.run_dir)
    try:
        _ensure_ledger_role(svc, settings, passwords[LEDGER_ROLE])
        return
    except _PasswordRefused:
        pid = _our_pid(svc)
        if pid is None:
            raise ServiceError(
                f"PostgreSQL di {svc.host}:{svc.port} menolak kata sandi superuser / refused the "
                f"superuser's password in {postgresql_secrets_dir(settings.run_dir)}, and it is "
                "not ours to restart"
            ) from None
    log.warning(
        "postgres dimulai ulang / restarting: it refused the superuser's password in its file"
    )
    _stop(svc, pid)
    _remove_stale_pid_file(svc)
    child = _start_postgres(svc, settings)
    _wait_until_answering(svc, settings.start_timeout_s, child)
    try:
        _ensure_ledger_role(svc, settings, passwords[LEDGER_ROLE])
    except _PasswordRefused:
        raise ServiceError(
            "PostgreSQL masih menolak kata sandi superuser / still refuses the superuser's "
            f"password after a restart; see {svc.log_file}"
        ) from None


def _ensure_ledger_role(svc: Service, settings: ServicesSettings, password: str) -> None:
    import psycopg
    from psycopg import sql

    role, database = sql.Identifier(LEDGER_ROLE), sql.Identifier(LEDGER_DATABASE)
    try:
        with connect_postgresql(settings, autocommit=True, connect_timeout=5) as conn:
            # Two ALTER ROLEs at once may fail ("tuple concurrently updated"); released with
            # the session.
            conn.execute("SELECT pg_advisory_lock(%s)", (_ROLES_LOCK,))
            # The SCRAM verifier, made here: the password itself never reaches the server,
            # where a failed statement could be logged with it.
            verifier = conn.pgconn.encrypt_password(
                password.encode(), LEDGER_ROLE.encode(), b"scram-sha-256"
            ).decode()
            known = "SELECT 1 FROM pg_roles WHERE rolname = %s"
            verb = "ALTER" if conn.execute(known, (LEDGER_ROLE,)).fetchone() else "CREATE"
            statement = f"{verb} ROLE {{}} {LEDGER_ROLE_ATTRIBUTES} PASSWORD {{}}"
            conn.execute(sql.SQL(statement).format(role, sql.Literal(verifier)))
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                (LEDGER_DATABASE,),
            ).fetchone()
            if owner is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
            elif owner[0] != LEDGER_ROLE:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc):
            raise _PasswordRefused from exc
        raise _role_error(svc, exc) from exc
    except psycopg.Error as exc:
        raise _role_error(svc, exc) from exc


def _role_error(svc: Service, exc: Exception) -> ServiceError:
    return ServiceError(
        f"peran/basis data {LEDGER_ROLE} tidak dapat dibuat / could not create the "
        f"{LEDGER_ROLE} role and database on {svc.host}:{svc.port}: {exc}"
    )
