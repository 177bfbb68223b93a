"""Where the broker's files are under the run dir, and telling our running Mosquitto to re-read
them after a change (`wastebank device`, `wastebank certs`, the admin page's device form).

The development services manager (wastebank/services/) writes Mosquitto's config and starts it
from this same layout; nothing here starts or installs anything.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from wastebank.pidfiles import our_pid

log = logging.getLogger(__name__)

RELOAD_LOG_LINE = b"Reloading config."
RELOAD_POLL_S = 0.02


@dataclass(frozen=True)
class BrokerAuthFiles:
    """The files behind Mosquitto's TLS listener, under ``run_dir``.

    ``certs/``: the site CA and the broker's certificate (`wastebank certs init`); gateways get
    ``ca.crt`` only. ``mosquitto/passwd`` and ``mosquitto/acl``: each device's password hash
    (written by ``mosquitto_passwd``) and the topics it may use (`wastebank device add`).
    """

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    password_file: Path
    acl_file: Path

    @property
    def tls_ready(self) -> bool:
        """The broker has a certificate and key: the TLS listener can be opened."""
        return self.server_cert.is_file() and self.server_key.is_file()


def broker_auth_files(run_dir: Path) -> BrokerAuthFiles:
    run_dir = run_dir.resolve()
    certs, mdir = run_dir / "certs", run_dir / "mosquitto"
    return BrokerAuthFiles(
        ca_cert=certs / "ca.crt",
        ca_key=certs / "ca.key",
        server_cert=certs / "server.crt",
        server_key=certs / "server.key",
        password_file=mdir / "passwd",
        acl_file=mdir / "acl",
    )


@dataclass(frozen=True)
class MosquittoFiles:
    """Our Mosquitto's own files under ``run_dir/mosquitto``: the config it runs with, the pid
    file it writes, the log it writes to."""

    dir: Path
    conf: Path
    pid_file: Path
    log_file: Path


def mosquitto_files(run_dir: Path) -> MosquittoFiles:
    mdir = run_dir.resolve() / "mosquitto"
    return MosquittoFiles(
        dir=mdir,
        conf=mdir / "mosquitto.conf",
        pid_file=mdir / "mosquitto.pid",
        log_file=mdir / "mosquitto.log",
    )


def mosquitto_pid(run_dir: Path) -> int | None:
    """Our Mosquitto's pid when it is running (never a system or another checkout's one)."""
    files = mosquitto_files(run_dir)
    return our_pid(files.pid_file, "mosquitto", files.conf)


def reload_mosquitto(run_dir: Path, timeout_s: float = 5.0) -> int | None:
    """Make our running Mosquitto re-read its password, ACL and certificate files (SIGHUP).

    Returns its pid, or None when ours is not running (the files are read when it starts).
    Waits until its log says it is reloading: that happens in its one event loop, so a client
    that connects after this returns meets the new files. Clients whose password no longer
    matches are disconnected by the reload (Mosquitto 2.0.11; its manual says otherwise).
    Listeners are not reloaded: a TLS listener added to the config needs a restart.
    """
    files = mosquitto_files(run_dir)
    pid = mosquitto_pid(run_dir)
    if pid is None:
        return None
    try:
        offset = files.log_file.stat().st_size
    except FileNotFoundError:
        offset = 0
    os.kill(pid, signal.SIGHUP)
    # Mosquitto says it reloaded only in its log: polled, there is nothing to await.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with files.log_file.open("rb") as fh:
                fh.seek(offset)
                if RELOAD_LOG_LINE in fh.read():
                    return pid
        except FileNotFoundError:
            pass
        time.sleep(RELOAD_POLL_S)
    log.warning(
        "mosquitto (pid %s) belum memuat ulang / has not logged a reload within %.0f s",
        pid,
        timeout_s,
    )
    return pid


def mosquitto_tls_listening(run_dir: Path) -> bool:
    """Whether the config our Mosquitto was started with has the TLS listener."""
    files = broker_auth_files(run_dir)
    try:
        conf = mosquitto_files(run_dir).conf.read_text()
    except FileNotFoundError:
        return False
    return f"certfile {files.server_cert}\n" in conf
