"""PostgreSQL as `wastebank services up` runs it: a password for every login, a superuser for
`up` and the tests only, and a ledger role that is no superuser (issue 13 part 3).

A server of this module's own (a private run dir and port, started under the CLI's umask 077),
so it may be restarted, migrated and have its passwords rotated while other suites use the
checkout's shared one."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import OperationalError

from tests.conftest import wait_until
from wastebank import config, ledger, services
from wastebank.config import load_settings, read_secret
from wastebank.services import LEDGER_DATABASE, LEDGER_ROLE, POSTGRESQL_SUPERUSER

pytestmark = pytest.mark.integration

# What an older checkout's `services up` wrote: loopback trusted, and no role had a password.
TRUST_PG_HBA = """\
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _settings(run_dir: Path) -> services.ServicesSettings:
    return load_settings(
        services.ServicesSettings,
        run_dir=run_dir,
        mqtt_port=_free_port(),
        influx_port=min(_free_port(), 65000),
        postgresql_port=_free_port(),
    )


def _up(settings: services.ServicesSettings) -> None:
    umask = os.umask(0o077)  # the CLI's: what root makes is closed to the postgres user
    try:
        services.up(settings, only=["postgres"])
    finally:
        os.umask(umask)


def _down(settings: services.ServicesSettings) -> None:
    services.down(settings)
    shutil.rmtree(services.postgres_service(settings).dir, ignore_errors=True)


def _password(settings: services.ServicesSettings, role: str) -> str:
    return read_secret(config.postgresql_secrets_dir(settings.run_dir) / role)


def _connect(
    settings: services.ServicesSettings,
    role: str,
    password: str | None,
    database: str = "postgres",
) -> psycopg.Connection[tuple[object, ...]]:
    svc = services.postgres_service(settings)
    return psycopg.connect(
        host=svc.host,
        port=svc.port,
        user=role,
        dbname=database,
        password=password,
        connect_timeout=5,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.ServicesSettings]:
    settings = _settings(tmp_path_factory.mktemp("pg-auth") / "run")
    _up(settings)
    yield settings
    _down(settings)


@pytest.fixture
def as_this_checkout(
    server: services.ServicesSettings, monkeypatch: pytest.MonkeyPatch
) -> services.ServicesSettings:
    """Processes of the module's server's checkout: its run dir is theirs (.run)."""
    monkeypatch.setattr(config, "RUN_DIR", server.run_dir)
    monkeypatch.setattr(config, "PORTS_FILE", server.run_dir / "ports.toml")
    return server


def test_every_password_is_a_0600_file_in_a_0700_folder(server: services.ServicesSettings) -> None:
    folder = config.postgresql_secrets_dir(server.run_dir)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == [POSTGRESQL_SUPERUSER, LEDGER_ROLE]
    for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE):
        assert stat.S_IMODE((folder / role).stat().st_mode) == 0o600
    assert _password(server, POSTGRESQL_SUPERUSER) != _password(server, LEDGER_ROLE)
    hba = (services.postgres_service(server).dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules == [["host", "all", "all", "all", "scram-sha-256"]]


@pytest.mark.parametrize("role", [POSTGRESQL_SUPERUSER, LEDGER_ROLE])
def test_a_login_without_a_password_or_with_a_wrong_one_is_refused(
    server: services.ServicesSettings, role: str
) -> None:
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _connect(server, role, None)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(server, role, "not-" + _password(server, role))
    other = LEDGER_ROLE if role == POSTGRESQL_SUPERUSER else POSTGRESQL_SUPERUSER
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(server, role, _password(server, other))
    with _connect(server, role, _password(server, role)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_the_ledger_role_owns_its_database_and_is_no_superuser(
    server: services.ServicesSettings,
) -> None:
    with _connect(server, LEDGER_ROLE, _password(server, LEDGER_ROLE), LEDGER_DATABASE) as conn:
        attrs = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert attrs == (False, False, False, False, False)
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
        assert owner == (LEDGER_ROLE,)
        conn.execute("CREATE TABLE t (x int)")  # its own database: migrations run as it
        conn.execute("DROP TABLE t")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("COPY (SELECT 1) TO PROGRAM 'true'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE DATABASE not_allowed")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE ROLE not_allowed")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"ALTER ROLE {LEDGER_ROLE} SUPERUSER")


def test_a_ledger_engine_finds_the_password_of_its_own_server_and_no_other(
    as_this_checkout: services.ServicesSettings,
) -> None:
    url = services.postgresql_url(as_this_checkout)
    assert make_url(url).password is None  # URLs are logged, and seen in `ps`
    engine = ledger.make_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT current_user")) == LEDGER_ROLE
        assert _password(as_this_checkout, LEDGER_ROLE) not in repr(engine.url)
    finally:
        engine.dispose()
    # The same server by another name than the one `services up` recorded: not ours to know,
    # so no local password is sent (a URL for another host never gets one).
    elsewhere = make_url(url).set(host="127.0.0.2")
    assert ledger.postgresql_password_file(elsewhere) is None
    assert ledger.postgresql_password_file(make_url(url).set(port=5432)) is None
    # libpq's own password file, for a server elsewhere: the URL names it, never the password.
    passfile = as_this_checkout.run_dir / "pgpass"
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    svc = services.postgres_service(as_this_checkout)
    os.write(
        fd, f"*:{svc.port}:*:{LEDGER_ROLE}:{_password(as_this_checkout, LEDGER_ROLE)}\n".encode()
    )
    os.close(fd)
    via_passfile = make_url(url).set(query={"passfile": str(passfile)})
    assert ledger.postgresql_password_file(via_passfile) is None
    engine = ledger.make_engine(via_passfile.render_as_string(False), migrate=False)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT current_user")) == LEDGER_ROLE
    finally:
        engine.dispose()


def test_an_open_password_file_is_refused_by_name(
    as_this_checkout: services.ServicesSettings,
) -> None:
    secret = config.postgresql_secrets_dir(as_this_checkout.run_dir) / LEDGER_ROLE
    secret.chmod(0o644)
    try:
        with pytest.raises(ValueError, match=f"{secret}.*chmod 600"):
            ledger.make_engine(services.postgresql_url(as_this_checkout), migrate=False)
    finally:
        secret.chmod(0o600)


def test_up_rotates_a_password_from_its_file_and_never_shows_one(
    as_this_checkout: services.ServicesSettings, caplog: pytest.LogCaptureFixture
) -> None:
    server = as_this_checkout
    svc = services.postgres_service(server)
    folder = config.postgresql_secrets_dir(server.run_dir)
    old = {role: _password(server, role) for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE)}
    engine = ledger.make_engine(services.postgresql_url(server), migrate=False)
    pid = services.status(server)[-1].pid
    try:
        with engine.connect() as conn:  # a process running all along
            assert conn.scalar(text("SELECT 1")) == 1
        # The operator rotates both: the ledger role's by writing the file, the superuser's
        # by removing it (`up` makes a new one).
        (folder / LEDGER_ROLE).write_text("a-new-ledger-password\n")
        (folder / POSTGRESQL_SUPERUSER).unlink()
        caplog.set_level(logging.DEBUG)
        _up(server)
        new = {role: _password(server, role) for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE)}
        assert new[LEDGER_ROLE] == "a-new-ledger-password"
        assert new[POSTGRESQL_SUPERUSER] != old[POSTGRESQL_SUPERUSER]
        # The server held the old superuser password: `up` restarted it to set the new one.
        assert services.status(server)[-1].pid != pid
        for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE):
            with pytest.raises(psycopg.OperationalError, match="authentication failed"):
                _connect(server, role, old[role])
            _connect(server, role, new[role]).close()
        engine.dispose()  # its connections died with the server; new ones read the new file
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT current_user")) == LEDGER_ROLE
        shown = caplog.text + svc.log_file.read_text(errors="replace")
        shown += "".join(s.describe() for s in services.status(server))
        for password in (*old.values(), *new.values()):
            assert password not in shown
    finally:
        engine.dispose()


def test_a_process_with_the_old_password_is_refused_after_rotation(
    as_this_checkout: services.ServicesSettings,
) -> None:
    server = as_this_checkout
    url = make_url(services.postgresql_url(server)).set(password=_password(server, LEDGER_ROLE))
    secret = config.postgresql_secrets_dir(server.run_dir) / LEDGER_ROLE
    secret.unlink()
    _up(server)
    engine = ledger.make_engine(url.render_as_string(False), migrate=False)
    try:
        with pytest.raises(OperationalError, match="password authentication failed"):
            engine.connect()
    finally:
        engine.dispose()


def test_an_older_checkouts_trusting_cluster_is_migrated_with_its_data(
    tmp_path: Path,
) -> None:
    """A cluster as an older `services up` left it, running: loopback trusted, no passwords,
    ``wastebank`` with CREATEDB; `up` restarts it with passwords, keeping its data."""
    settings = _settings(tmp_path / "run")
    svc = services.postgres_service(settings)
    user = services._postgres_os_user()
    bindir = services._postgresql_bindir()
    assert bindir is not None
    uid, gid, groups = services._as(user)
    umask = os.umask(0o077)
    try:
        services._server_home(svc.dir, user)
        data = svc.dir / "data"
        data.mkdir(mode=0o700)
        if user is not None:
            os.chown(data, user.pw_uid, user.pw_gid)
        initdb = [str(bindir / "initdb"), "-D", str(data), "-U", POSTGRESQL_SUPERUSER]
        initdb += ["--auth", "trust", "-E", "UTF8", "--locale", "C.UTF-8"]
        subprocess.run(
            initdb, check=True, capture_output=True, user=uid, group=gid, extra_groups=groups
        )
        conf = services.postgresql_conf(svc, settings).replace(
            "password_encryption = 'scram-sha-256'\n", ""
        )
        for name, body in (("postgresql.conf", conf), ("pg_hba.conf", TRUST_PG_HBA)):
            (svc.dir / name).write_text(body)
            if user is not None:
                os.chown(svc.dir / name, user.pw_uid, user.pw_gid)
        (svc.dir / "pg_ident.conf").write_text("")
        if user is not None:
            os.chown(svc.dir / "pg_ident.conf", user.pw_uid, user.pw_gid)
        with svc.log_file.open("ab") as log_fh:
            old_server = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(svc.conf)],
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
    finally:
        os.umask(umask)
    try:
        wait_until(lambda: services._postgres_answers(svc.host, svc.port), timeout=30)
        with _connect(settings, POSTGRESQL_SUPERUSER, None) as conn:  # trusted
            conn.execute(f"CREATE ROLE {LEDGER_ROLE} LOGIN CREATEDB")
            conn.execute(f"CREATE DATABASE {LEDGER_DATABASE} OWNER {LEDGER_ROLE}")
        with _connect(settings, LEDGER_ROLE, None, LEDGER_DATABASE) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        assert services.status(settings)[-1].pid == old_server.pid  # ours, as the old `up`'s

        _up(settings)

        assert old_server.wait(timeout=15) is not None  # stopped, and started anew
        assert "trust" not in (svc.dir / "pg_hba.conf").read_text()
        for role in (POSTGRESQL_SUPERUSER, LEDGER_ROLE):
            with pytest.raises(psycopg.OperationalError, match="no password supplied"):
                _connect(settings, role, None)
        password = _password(settings, LEDGER_ROLE)
        with _connect(settings, LEDGER_ROLE, password, LEDGER_DATABASE) as conn:
            assert conn.execute("SELECT x FROM kept").fetchall() == [(42,)]
            createdb = "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user"
            assert conn.execute(createdb).fetchone() == (False,)
        with _connect(settings, POSTGRESQL_SUPERUSER, _password(settings, POSTGRESQL_SUPERUSER)):
            pass
    finally:
        if old_server.poll() is None:
            old_server.kill()
            old_server.wait()
        _down(settings)
