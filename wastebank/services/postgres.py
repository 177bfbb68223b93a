"""Our PostgreSQL (the ledger of a multi-node city; SQLite needs none), started only when
asked: `up --with postgresql`, ``postgresql = true`` in the settings
(``WASTEBANK_POSTGRESQL=true``), or ``only=("postgres",)`` (the test suite).

Its cluster lives in ``run_dir/postgresql/data``, made with Debian's own ``initdb``; the server
runs as the ``postgres`` system user when `up` runs as root (it refuses root), else as whoever
runs `up`, listens on ``bind`` at ``postgresql_port`` (15432, never the system cluster's 5432)
and no Unix socket, and has a role and database ``wastebank`` (``postgresql_url``). Every client
logs in with a password (scram-sha-256, from loopback too): the superuser ``postgres`` (`up`
itself and the test suite) and ``wastebank``, the ledger's role (no superuser; it owns the ledger
database). `up` keeps their passwords in ``run_dir/secrets/postgres/<role>`` (0600) and sets
them on the server (docs/operations.md, "PostgreSQL roles and passwords").
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import secrets
import signal
import subprocess
from pathlib import Path
from stat import S_IXGRP, S_IXOTH, S_IXUSR
from typing import TYPE_CHECKING, Any

from wastebank import pidfiles
from wastebank.config import postgresql_secrets_dir, read_secret
from wastebank.services.core import (
    Service,
    ServiceError,
    ServicesSettings,
    Starting,
    log,
    our_pid,
    remove_stale_pid_file,
    service_host,
    stop_service,
    wait_until_answering,
)

if TYPE_CHECKING:
    import psycopg

POSTGRESQL_LIB = Path("/usr/lib/postgresql")  # Debian: <major>/bin/{initdb,postgres}
POSTGRESQL_SUPERUSER = "postgres"  # initdb -U; also the OS user it runs as under root
LEDGER_ROLE = LEDGER_DATABASE = "wastebank"


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
        host=service_host(settings),
        port=settings.postgresql_port,
        answers=postgres_answers,
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


def postgres_config_changed(svc: Service, settings: ServicesSettings) -> bool:
    """Whether the configs our server runs with differ from this release's (e.g. an older
    checkout's pg_hba.conf, which trusted loopback)."""
    try:
        return (svc.dir / "pg_hba.conf").read_text() != pg_hba_conf() or (
            svc.dir / "postgresql.conf"
        ).read_text() != postgresql_conf(svc, settings)
    except FileNotFoundError:
        return True


def postgresql_bindir(major: str | None = None) -> Path | None:
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


def postgres_os_user() -> pwd.struct_passwd | None:
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


def start_postgres(svc: Service, settings: ServicesSettings) -> Starting:
    data = svc.dir / "data"
    user = postgres_os_user()
    version_file = data / "PG_VERSION"
    major = version_file.read_text().strip() if version_file.exists() else None
    bindir = postgresql_bindir(major)
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


def server_home(directory: Path, user: pwd.struct_passwd | None) -> None:
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


def postgres_answers(host: str, port: int, timeout_s: float = 3.0) -> bool:
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
        pid = our_pid(svc)
        if pid is None:
            raise ServiceError(
                f"PostgreSQL di {svc.host}:{svc.port} menolak kata sandi superuser / refused the "
                f"superuser's password in {postgresql_secrets_dir(settings.run_dir)}, and it is "
                "not ours to restart"
            ) from None
    log.warning(
        "postgres dimulai ulang / restarting: it refused the superuser's password in its file"
    )
    stop_service(svc, pid)
    remove_stale_pid_file(svc)
    child = start_postgres(svc, settings)
    wait_until_answering(svc, settings.start_timeout_s, child)
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
