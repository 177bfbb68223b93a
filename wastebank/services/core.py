"""What every development service has in common: the settings, where a daemon keeps its files,
its state, and starting, waiting for and stopping one of ours.

A daemon is ours when our pid file names it and it runs our config (wastebank/pidfiles.py): a
system mosquitto/influxd/postgres or another checkout's is never touched. Waiting for a daemon
to answer or to stop polls it: neither offers an event to await, and neither wait is a retry
of something that failed (a daemon we just started is not answering yet, not failing).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, field

from wastebank import pidfiles
from wastebank.config import (
    DEFAULT_INFLUX_PORT,
    DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_TLS_PORT,
    DEFAULT_POSTGRESQL_PORT,
    RUN_DIR,
    InfluxSettings,
    WastebankSettings,
)
from wastebank.errors import SetupError

log = logging.getLogger("wastebank.services")

INFLUX_RPC_OFFSET = 2  # influx_port + 2, like 8086/8088, so we never clash with a system influxd
STOP_TIMEOUT_S = 10.0
POLL_S = 0.1

ServiceName = Literal["mosquitto", "influxd", "postgres", "gammu-smsd"]
Starting = subprocess.Popen[bytes] | None  # what a start_* returns: our child, or None (forked)


class ServiceError(SetupError):
    """A service could not be installed, started or stopped; the message says why."""


class ServicesSettings(WastebankSettings, kw_only=True):
    run_dir: Path = RUN_DIR
    bind: str = "127.0.0.1"
    mqtt_port: Annotated[int, Meta(ge=1, le=65535)] = DEFAULT_MQTT_PORT
    mqtt_tls_port: Annotated[
        int,
        Meta(
            ge=1,
            le=65535,
            description="Mosquitto's TLS listener for devices; opened only once certificates exist",
        ),
    ] = DEFAULT_MQTT_TLS_PORT
    mqtt_tls_bind: Annotated[
        str, Meta(description="address of the TLS listener; empty: every interface (IPv4 and IPv6)")
    ] = ""
    influx_port: Annotated[int, Meta(ge=1, le=65535 - INFLUX_RPC_OFFSET)] = DEFAULT_INFLUX_PORT
    postgresql: Annotated[
        bool,
        Meta(
            description="start PostgreSQL too (a multi-node ledger; `services up --with "
            "postgresql`)"
        ),
    ] = False
    postgresql_port: Annotated[int, Meta(ge=1, le=65535)] = DEFAULT_POSTGRESQL_PORT
    gammu_smsd: Annotated[
        bool,
        Meta(
            description="Gammu SMSD on a dummy phone in run_dir/gammu too (`services up --with "
            "sms`)"
        ),
    ] = False
    influx: Annotated[
        InfluxSettings,
        Meta(
            description="the city's InfluxDB database and retention settings `up` creates the "
            "schema with (as the ingester's [influx]); its url is not used: influx_port is"
        ),
    ] = field(default_factory=InfluxSettings)
    broker_principals: Annotated[
        tuple[str, ...],
        Meta(
            description="process identities `up` gives a broker password (in run_dir/secrets/mqtt, "
            "0600); sim and test are for development and tests only (docs/operations.md)"
        ),
    ] = ("ingest", "api", "tps", "sim", "test")
    install: bool = True
    start_timeout_s: Annotated[float, Meta(gt=0)] = 30.0


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


def service_host(settings: ServicesSettings) -> str:
    """The address our processes reach every daemon at: ``bind``, or loopback for a wildcard."""
    host = "127.0.0.1" if settings.bind in ("", "0.0.0.0") else settings.bind  # noqa: S104
    return "::1" if host == "::" else host


def service_state(svc: Service) -> ServiceState:
    pid = our_pid(svc)
    answering = pid is not None and svc.answers(svc.host, svc.port)
    return ServiceState(svc.name, pid, svc.host, svc.port, answering)


def our_pid(svc: Service) -> int | None:
    """The pid in our pid file, if that process is alive, is `svc.name` and runs our config."""
    return pidfiles.our_pid(svc.pid_file, svc.name, svc.conf)


def wait_until_answering(
    svc: Service, timeout_s: float, child: subprocess.Popen[bytes] | None = None
) -> int:
    deadline = time.monotonic() + timeout_s
    pid: int | None = None
    while time.monotonic() < deadline:
        pid = our_pid(svc)
        if pid is not None and svc.answers(svc.host, svc.port):
            return pid
        if child is not None and child.poll() is not None:
            pidfiles.forget_child(child.pid)
            raise ServiceError(f"{svc.name} berhenti / exited while starting\n{log_tail(svc)}")
        time.sleep(POLL_S)
    raise ServiceError(
        f"{svc.name} tidak menjawab / did not answer on {svc.host}:{svc.port} within "
        f"{timeout_s:.0f} s (pid {pid})\n{log_tail(svc)}"
    )


def stop_service(svc: Service, pid: int) -> None:
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


def remove_stale_pid_file(svc: Service) -> None:
    if svc.pid_file.exists() and our_pid(svc) is None:
        log.info("menghapus / removing stale %s", svc.pid_file)
        svc.pid_file.unlink(missing_ok=True)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def log_tail(svc: Service, lines: int = 30) -> str:
    try:
        text = svc.log_file.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {svc.log_file})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of / baris terakhir {svc.log_file} ---\n{tail}"
