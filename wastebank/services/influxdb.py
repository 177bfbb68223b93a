"""Our InfluxDB 1.x: its config, its users (an admin, one per process role) with their
passwords in ``run_dir/secrets/influxdb``, the city database's schema and grants, starting it,
and asking whether it answers."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import secrets
import subprocess
from collections.abc import Collection, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from wastebank import pidfiles
from wastebank.config import INFLUX_ADMIN, INFLUX_ROLES, InfluxSettings, SecretStr, read_secret
from wastebank.services.core import (
    INFLUX_RPC_OFFSET,
    Service,
    ServiceError,
    ServicesSettings,
    log,
    service_host,
)

T = TypeVar("T")

INFLUXD_BIN = Path("/usr/bin/influxd")
INFLUX_PASSWORD_BYTES = 24  # token_urlsafe: 32 characters, nothing to escape in InfluxQL


def influxd_service(settings: ServicesSettings) -> Service:
    idir = settings.run_dir.resolve() / "influxdb"
    return Service(
        name="influxd",
        dir=idir,
        conf=idir / "influxdb.conf",
        pid_file=idir / "influxd.pid",
        log_file=idir / "influxd.log",
        host=service_host(settings),
        port=settings.influx_port,
        answers=influx_answers,
    )


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


def influxd_config_changed(svc: Service, settings: ServicesSettings) -> bool:
    try:
        return svc.conf.read_text() != influxdb_conf(svc, settings)
    except FileNotFoundError:
        return True


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
    svc = influxd_service(settings)
    host = f"[{svc.host}]" if ":" in svc.host else svc.host
    return msgspec.structs.replace(
        settings.influx,
        url=f"http://{host}:{svc.port}",
        database=database or settings.influx.database,
        username=INFLUX_ADMIN,
        password=SecretStr(read_secret(influx_secrets_dir(settings.run_dir) / INFLUX_ADMIN)),
        password_file=None,
        credentials_dir=influx_secrets_dir(settings.run_dir),
        token=None,
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
    svc = influxd_service(settings)
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
                scoped = msgspec.structs.replace(admin, database=database)
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
    svc = influxd_service(settings)
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


def start_influxd(svc: Service, settings: ServicesSettings) -> subprocess.Popen[bytes] | None:
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


def influx_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
    """GET /ping answers 204 with an X-Influxdb-Version header."""
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        resp = httpx.get(f"http://{netloc}/ping", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return resp.status_code == 204 and "X-Influxdb-Version" in resp.headers
