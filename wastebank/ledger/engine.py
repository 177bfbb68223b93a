"""Engines for the ledger's database: SQLite by default, PostgreSQL (psycopg 3) for multi-node;
the schema brought to (or checked at) this release's head; PostgreSQL passwords read from files,
never from the URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from wastebank.config import default_ledger_url, local_postgresql_password_file, read_secret


def make_engine(
    url: str | None = None,
    *,
    writer: bool = True,
    migrate: bool | None = None,
    pool: dict[str, Any] | None = None,
) -> Engine:
    """An engine for ``url`` (default: the SQLite file under .run/) whose schema is at this
    release's head.

    ``migrate`` (default: ``writer``): a writer upgrades the ledger to the head first, under the
    migration lock (:mod:`wastebank.migrations`; a no-op costing one query when it is there
    already); a reader (``writer=False``, the API) only checks and raises
    :class:`~wastebank.migrations.LedgerSchemaError` when it is not. ``migrate=False`` does
    neither (``wastebank ledger migrate`` / ``current``).

    ``postgresql://`` URLs use psycopg 3 (``postgresql+psycopg://``); pooled connections are
    checked before use, so a restarted server costs no failed batch.

    ``pool``: the connection pool's size (``pool_size``, ``max_overflow``, ``pool_timeout``);
    default SQLAlchemy's (5 + 10 overflow, 30 s), but the API sizes its pools with its threads
    (api/capacity.py). Ignored for an in-memory SQLite database (one connection per thread).

    On SQLite, SQLAlchemy (not the driver) begins transactions, so savepoints work; a ``writer``
    engine begins them IMMEDIATE: it takes the write lock up front and waits for it (busy
    timeout) when another process holds it, instead of failing when it upgrades a read
    snapshot another writer has since changed ("database is locked"). Several ingesters on one
    SQLite ledger depend on this. Readers (the API) keep deferred transactions.
    """
    from wastebank import migrations

    parsed = make_url(url or os.environ.get("WASTEBANK_LEDGER_URL") or default_ledger_url())
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            _private_file(parsed.database)
            engine = create_engine(parsed, **(pool or {}))
        else:
            engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    else:
        engine = plain_engine(parsed, pool_pre_ping=True, **(pool or {}))
    try:
        if migrate or (migrate is None and writer):
            migrations.upgrade(engine)
        elif migrate is None:
            migrations.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def plain_engine(url: str | URL, **kwargs: Any) -> Engine:
    """``create_engine(url, **kwargs)`` (``postgresql://``: psycopg 3) that logs in to our own
    PostgreSQL with its role's password from `services up`'s file
    (:func:`postgresql_password_file`): a PostgreSQL ledger without :func:`make_engine`'s
    migrations (tests, benchmarks)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **kwargs)
    secret = postgresql_password_file(parsed)
    if secret is not None:
        read_secret(secret)  # a missing or open file fails here, at start, naming it

        @event.listens_for(engine, "do_connect")
        def _password(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            # Read at each new connection: a password rotated by `services up` is used without
            # a restart (pooled connections stay logged in).
            params["password"] = read_secret(secret)

    return engine


def postgresql_password_file(url: URL) -> Path | None:
    """The password file of ``url``'s role on this checkout's own PostgreSQL, when ``url`` has
    no password and no libpq ``passfile`` of its own (``config.local_postgresql_password_file``).

    The URL itself never carries the password (URLs end up in logs, ``ps`` and error messages);
    the engine reads it from the file at each new connection."""
    if url.get_backend_name() != "postgresql" or url.password is not None:
        return None
    if "passfile" in url.query:
        return None
    return local_postgresql_password_file(url.host, url.port, url.username)


def postgresql_conninfo(url: str | URL) -> tuple[str, str | None]:
    """A libpq connection URI for ``url`` (any driver name), without a password, and the
    password to log in with: the URL's own, else the local one (:func:`postgresql_password_file`),
    else None (libpq's ``passfile``/``~/.pgpass``, or a server that asks for none). For tools
    that talk to PostgreSQL without an engine (``psycopg.connect``, ``pg_dump``)."""
    parsed = make_url(url)
    libpq = parsed.set(drivername="postgresql", password=None).render_as_string(False)
    if parsed.password is not None:
        return libpq, str(parsed.password)
    secret = postgresql_password_file(parsed)
    return libpq, None if secret is None else read_secret(secret)


def _private_file(path: str) -> None:
    """A ledger file only its owner can read (0600) from its first byte; an older one that others
    could read is made private. SQLite gives its -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = os.stat(path)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(path, 0o600)
    else:
        os.close(fd)


# How long a connection waits for another process's lock before "database is locked".
BUSY_TIMEOUT_S = 10.0


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver begins nothing; SQLAlchemy's "begin" does
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        _into_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _into_wal(cur: Any) -> None:
    """Turn a new ledger file into WAL (the mode is kept in the file: once is enough).

    SQLite does not wait (no busy handler) for the lock this needs while another connection
    holds the write lock of the still empty file: processes opening a new ledger at once (an
    ingester and `seed`, several ingesters) made one of them fail with "database is locked"
    at once. So the switch is tried again, within the busy timeout."""
    import sqlite3

    import stamina

    for attempt in stamina.retry_context(
        on=lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc),
        attempts=None,
        timeout=BUSY_TIMEOUT_S,
        wait_initial=0.01,
        wait_max=0.25,
    ):
        with attempt:
            cur.execute("PRAGMA journal_mode=WAL")
