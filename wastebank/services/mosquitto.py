"""Our Mosquitto: its config, the client-id plugin it loads, the files it reads besides (the
process identities' passwords), starting it, and asking whether it answers.

Two listeners once the site has certificates (`wastebank certs init`): the loopback one for the
city server's own processes, and a TLS one for gateways and sensors over the internet. Every
client on either logs in with its own password and may publish only its own topics
(`wastebank device add`, wastebank/devices/). Where the files are, and reloading a running
broker, belong to wastebank/devices/broker.py: the admin page uses them too.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from wastebank import devices
from wastebank.devices import BrokerAuthFiles, broker_auth_files
from wastebank.services.core import (
    POLL_S,
    Service,
    ServiceError,
    ServicesSettings,
    log,
    log_tail,
    port_open,
    service_host,
)

MOSQUITTO_BIN = Path("/usr/sbin/mosquitto")
CLIENTID_PLUGIN_SOURCE = (
    Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "wastebank_clientid.c"
)
MOSQUITTO_MAX_QUEUED_MESSAGES = 3_000_000
MOSQUITTO_MAX_QUEUED_BYTES = 1 << 30  # payload bytes queued per client (< 2**31: no overflow)
MOSQUITTO_MAX_INFLIGHT = 10_000
MOSQUITTO_AUTOSAVE_S = 5
MOSQUITTO_MAX_PACKET_BYTES = 256 * 1024
"""The largest MQTT packet the broker takes from any client (``max_packet_size``): a payload at
the ingester's limit (``messages.MAX_PAYLOAD_BYTES``, 64 KiB) with the longest topic (64 KiB)
fits, so an oversized-for-the-ingester message still arrives and is counted as a dead letter;
a bigger one never reaches a subscriber: the broker disconnects its sender."""


def mosquitto_service(settings: ServicesSettings) -> Service:
    files = devices.mosquitto_files(settings.run_dir)
    return Service(
        name="mosquitto",
        dir=files.dir,
        conf=files.conf,
        pid_file=files.pid_file,
        log_file=files.log_file,
        host=service_host(settings),
        port=settings.mqtt_port,
        answers=mqtt_answers,
    )


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
# Every autosave_interval s the whole in-memory store is written (its pause: docs/scaling.md,
# "The broker's settings"); a crash loses at most that much of what was acknowledged.
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
# unacknowledged segment, which capped a pipelined QoS 1 publisher (docs/scaling.md).
set_tcp_nodelay true
# MQTT allows 256 MB; a packet over this is refused and its sender disconnected (MQTT 5
# clients are told the limit in CONNACK). Above the ingester's payload limit plus a topic, so
# a payload over that still arrives and becomes a dead letter (docs/operations.md).
max_packet_size {MOSQUITTO_MAX_PACKET_BYTES}
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


def stale_config(svc: Service, settings: ServicesSettings) -> bool:
    try:
        return svc.conf.read_text() != mosquitto_conf(svc, settings)
    except FileNotFoundError:
        return True


def reload_mosquitto(settings: ServicesSettings, timeout_s: float = 5.0) -> int | None:
    """:func:`wastebank.devices.reload_mosquitto` of these settings' run dir."""
    return devices.reload_mosquitto(settings.run_dir, timeout_s)


def mosquitto_tls_listening(settings: ServicesSettings) -> bool:
    """:func:`wastebank.devices.mosquitto_tls_listening` of these settings' run dir."""
    return devices.mosquitto_tls_listening(settings.run_dir)


def start_mosquitto(svc: Service, settings: ServicesSettings) -> subprocess.Popen[bytes] | None:
    (svc.dir / "data").mkdir(exist_ok=True)
    files = broker_auth_files(settings.run_dir)
    if files.tls_ready:
        tls_host = settings.mqtt_tls_bind or "127.0.0.1"
        if tls_host in ("0.0.0.0", "::"):  # noqa: S104
            tls_host = "127.0.0.1"
        if port_open(tls_host, settings.mqtt_tls_port):
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
            f"{(result.stderr or result.stdout).strip()}\n{log_tail(svc)}"
        )
    return None  # daemonized: not our child


def mqtt_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
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


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name
