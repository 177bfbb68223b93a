"""`up`, `down` and `status`: the development services as one set."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from wastebank.services.core import (
    Service,
    ServiceError,
    ServiceName,
    ServicesSettings,
    ServiceState,
    Starting,
    log,
    our_pid,
    port_open,
    remove_stale_pid_file,
    service_state,
    stop_service,
    wait_until_answering,
)
from wastebank.services.gammu_smsd import start_dummy_smsd, stop_dummy_smsd
from wastebank.services.influxdb import (
    influxd_config_changed,
    influxd_service,
    prepare_influxdb,
    start_influxd,
)
from wastebank.services.install import install_missing
from wastebank.services.mosquitto import (
    mosquitto_service,
    prepare_broker,
    reload_mosquitto,
    stale_config,
    start_mosquitto,
)
from wastebank.services.ports import claim_ports
from wastebank.services.postgres import (
    postgres_config_changed,
    postgres_os_user,
    postgres_service,
    prepare_postgresql,
    server_home,
    start_postgres,
)


def default_services(settings: ServicesSettings) -> tuple[Service, Service]:
    """Mosquitto and InfluxDB: what `up` starts unless told otherwise."""
    return mosquitto_service(settings), influxd_service(settings)


@dataclass(frozen=True)
class _Daemon:
    """One daemon as `up` handles it."""

    svc: Service
    start: Callable[[Service, ServicesSettings], Starting]
    config_changed: Callable[[Service, ServicesSettings], bool]
    """Whether ours runs with another config than this release writes (e.g. an older
    checkout's): then it is restarted, its data kept."""
    run_as: Callable[[], pwd.struct_passwd | None] = lambda: None
    """Whom it runs as (None: whoever runs `up`): its directories are made theirs."""


def up(settings: ServicesSettings, only: Collection[ServiceName] | None = None) -> None:
    """Install what is missing; start each daemon unless ours is already running and answering.

    ``only`` limits which daemons start (tests start a private Mosquitto on its own); by default
    Mosquitto and InfluxDB, and PostgreSQL when ``settings.postgresql`` is set.

    Under umask 077 whoever calls it (a test, a script), so what it and the daemons it starts
    create is private; directories of an older run dir are closed (:func:`close_run_dir`).
    """
    previous = os.umask(0o077)
    try:
        _up(settings, only)
    finally:
        os.umask(previous)


def _up(settings: ServicesSettings, only: Collection[ServiceName] | None) -> None:
    close_run_dir(settings)
    claim_ports(settings)
    wanted: set[str] = set(only) if only is not None else {"mosquitto", "influxd"}
    if only is None and settings.postgresql:
        wanted.add("postgres")
    if only is None and settings.gammu_smsd:
        wanted.add("gammu-smsd")
    install_missing(settings, wanted)
    mosquitto, influxd = default_services(settings)
    new_passwords = prepare_broker(settings) if mosquitto.name in wanted else []
    postgres = postgres_service(settings)
    daemons = (
        # Mosquitto's config changes e.g. when listeners came to need passwords, or with a new
        # client-id plugin (its digest is in the config).
        _Daemon(mosquitto, start_mosquitto, stale_config),
        # An older checkout's, with auth off: its data stays, its users come below.
        _Daemon(influxd, start_influxd, influxd_config_changed),
        # An older checkout's, which trusted loopback: its start sets the superuser's password
        # first (start_postgres), the roles' come below.
        _Daemon(postgres, start_postgres, postgres_config_changed, postgres_os_user),
    )
    for daemon in daemons:
        if daemon.svc.name not in wanted:
            continue
        state = _current(daemon, settings)
        if state.healthy and daemon.svc is mosquitto and new_passwords:
            reload_mosquitto(settings)
        if state.healthy:
            log.info(
                "%s sudah berjalan / already running on %s:%s (pid %s)",
                daemon.svc.name,
                daemon.svc.host,
                daemon.svc.port,
                state.pid,
            )
            continue
        _start(daemon, settings)
    if influxd.name in wanted:
        prepare_influxdb(settings)
    if postgres.name in wanted:
        prepare_postgresql(postgres, settings)
    if "gammu-smsd" in wanted:
        start_dummy_smsd(settings)


def close_run_dir(settings: ServicesSettings) -> None:
    """The run dir and the directories of ours in it 0700, ``ports.toml`` 0600, as
    docs/operations.md ("Izin berkas") says, also when an older release or a caller's umask made
    them open. One exception: while a PostgreSQL cluster run by the ``postgres`` user lives in
    ``run_dir/postgresql`` (made by an older release), the run dir is 0711, which lets that
    user pass through to the cluster's own 0700 directory and nobody list it; a new cluster
    lives under ``~postgres`` instead (``postgres_service``)."""
    run = settings.run_dir
    if not run.is_dir():
        return
    mosquitto, influxd = default_services(settings)
    secrets = run / "secrets"
    ours: list[Path] = [secrets, mosquitto.dir, mosquitto.dir / "data", influxd.dir]
    ours += [influxd.dir / sub for sub in ("data", "meta", "wal")]
    if secrets.is_dir():
        ours += [d for d in secrets.iterdir() if d.is_dir() and not d.is_symlink()]
    for directory in ours:
        if directory.is_dir() and not directory.is_symlink():
            directory.chmod(0o700)
    ports = run / "ports.toml"
    if ports.is_file():
        ports.chmod(0o600)
    cluster = postgres_service(settings).dir
    others = cluster.is_relative_to(run.resolve()) and _owner(cluster) not in (None, os.geteuid())
    run.chmod(0o711 if others else 0o700)


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except FileNotFoundError:
        return None


def _current(daemon: _Daemon, settings: ServicesSettings) -> ServiceState:
    """The state of ours once settled: one still starting is waited for, one hung or running
    with another config is stopped (to be started again)."""
    svc = daemon.svc
    state = service_state(svc)
    if state.pid is not None and not state.answering:  # ours: still starting, or hung
        try:
            wait_until_answering(svc, settings.start_timeout_s)
        except ServiceError as exc:
            log.warning("%s dimulai ulang / restarting: %s", svc.name, exc)
            stop_service(svc, state.pid)
        state = service_state(svc)
    if state.healthy and daemon.config_changed(svc, settings):
        log.warning("%s dimulai ulang / restarting: its config changed", svc.name)
        if state.pid is not None:
            stop_service(svc, state.pid)
        state = service_state(svc)
    return state


def _start(daemon: _Daemon, settings: ServicesSettings) -> None:
    """Start ours and wait until it answers; never beside another program on its port."""
    svc = daemon.svc
    remove_stale_pid_file(svc)
    if port_open(svc.host, svc.port):
        # Never another checkout's daemon: its data, passwords and config are not ours.
        raise ServiceError(
            f"port {svc.host}:{svc.port} sudah dipakai proses lain / already in use by "
            f"another process; pick another {svc.name} port, or delete "
            f"{settings.run_dir / 'ports.toml'} so `up` chooses free ones"
        )
    server_home(svc.dir, daemon.run_as())
    child = daemon.start(svc, settings)
    pid = wait_until_answering(svc, settings.start_timeout_s, child)
    log.info("%s berjalan / running on %s:%s (pid %s)", svc.name, svc.host, svc.port, pid)


def down(settings: ServicesSettings) -> None:
    """Stop the daemons named by our pid files; leave anything else alone."""
    for svc in (*default_services(settings), postgres_service(settings)):
        pid = our_pid(svc)
        if pid is None:
            log.info("%s tidak berjalan / not running", svc.name)
        else:
            log.info("menghentikan / stopping %s (pid %s)", svc.name, pid)
            stop_service(svc, pid)
            log.info("%s berhenti / stopped", svc.name)
        svc.pid_file.unlink(missing_ok=True)
    stop_dummy_smsd(settings)


def status(settings: ServicesSettings) -> list[ServiceState]:
    """Mosquitto and InfluxDB; PostgreSQL too when it is asked for or ours is running."""
    states = [service_state(svc) for svc in default_services(settings)]
    postgres = postgres_service(settings)
    if settings.postgresql or our_pid(postgres) is not None:
        states.append(service_state(postgres))
    return states
