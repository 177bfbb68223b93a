"""Backups of the ledger, and restoring one into an empty database.

SQLite: SQLite's online backup API (:meth:`sqlite3.Connection.backup`), in one step, which reads
one consistent snapshot while an ingester goes on writing (in WAL mode a reader never blocks a
writer). The copy is switched to a rollback journal, so it is one self-contained file, checked
with ``PRAGMA integrity_check`` and only then renamed into place.

PostgreSQL: ``pg_dump --format=custom`` (one snapshot of the whole database, taken while others
write) and ``pg_restore --single-transaction`` (all of it or nothing), with Debian's
postgresql-client binaries of the server's major version from ``/usr/lib/postgresql/<major>/bin``
(found as :mod:`wastebank.services` finds the server's), a newer major when that one is missing,
or the ones on ``PATH``. A password in the ledger URL is passed in ``PGPASSWORD``, never on the
command line.

A restore refuses a database that holds any table unless ``force`` (then the tables are dropped
first on PostgreSQL; the whole file is replaced on SQLite), and refuses a backup from a release
newer than this one. It restores the schema revision the backup has; an older one is brought to
this release's head by the next writer or ``wastebank ledger migrate``. Backups hold personal data
(names, phone numbers, NIK hashes) and are written readable by their owner only (0600).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, make_url, text
from sqlalchemy.engine import URL

from wastebank import ledger, migrations
from wastebank.config import RUN_DIR, default_ledger_url
from wastebank.errors import BadInput, Conflict, SetupError
from wastebank.services import POSTGRESQL_LIB

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
BUSY_TIMEOUT_MS = 10_000
PG_TOOL_TIMEOUT_S = 3600.0


class BackupError(SetupError):
    """A backup or restore could not be made: a tool, a path or a database the operator must see
    to first; the message says which."""


class UnreadableBackup(BackupError, BadInput):
    """The file given to restore is not a backup this release can read."""


class TargetNotEmpty(BackupError, Conflict):
    """A restore into a database that holds tables, without ``force``."""


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    backend: Backend
    size: int  # bytes
    revision: str | None  # the schema revision it holds


@dataclass(frozen=True)
class RestoreInfo:
    backend: Backend
    revision: str | None  # the schema revision restored
    replaced_tables: int  # tables that were in the database before (with force)

    @property
    def needs_migration(self) -> bool:
        return self.revision != migrations.head()


def _url(url: str | None) -> URL:
    return make_url(url or os.environ.get("WASTEBANK_LEDGER_URL") or default_ledger_url())


def backend_of(url: str | None) -> Backend:
    name = _url(url).get_backend_name()
    if name not in set(Backend):
        raise BackupError(f"no backup for {name} ledgers: SQLite or PostgreSQL")
    return Backend(name)


def format_of(path: Path) -> Backend:
    """Which kind of backup ``path`` is, from its first bytes."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise UnreadableBackup(
            f"cadangan tidak terbaca / cannot read the backup {path}: {exc}"
        ) from None
    if head.startswith(SQLITE_MAGIC):
        return Backend.SQLITE
    if head.startswith(PGDUMP_MAGIC):
        return Backend.POSTGRESQL
    raise UnreadableBackup(f"{path} is neither an SQLite ledger nor a pg_dump custom archive")


def default_path(url: str | None, directory: Path | None = None) -> Path:
    """``.run/backups/ledger-20261123T013000Z.sqlite`` (``.pgdump`` for PostgreSQL)."""
    suffix = "sqlite" if backend_of(url) is Backend.SQLITE else "pgdump"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return (directory or RUN_DIR / "backups") / f"ledger-{stamp}.{suffix}"


def _partial(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.partial")


def _publish(tmp: Path, dest: Path) -> None:
    """Make ``tmp`` durable, private and then visible as ``dest`` in one rename."""
    os.chmod(tmp, 0o600)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)


def backup(url: str | None, dest: Path) -> BackupInfo:
    """Write a backup of the ledger at ``url`` to ``dest`` (an existing file is replaced only
    once the new backup is complete)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial(dest)
    try:
        if backend_of(url) is Backend.SQLITE:
            revision = _backup_sqlite(_sqlite_path(url), tmp)
        else:
            revision = _backup_postgresql(_url(url), tmp)
        _publish(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return BackupInfo(dest, backend_of(url), dest.stat().st_size, revision)


def restore(src: Path, url: str | None, *, force: bool = False) -> RestoreInfo:
    """Restore the backup ``src`` into the database at ``url``, which must hold no table unless
    ``force``."""
    kind, target = format_of(src), backend_of(url)
    if kind is not target:
        raise BackupError(
            f"{src} is a {kind} backup and the ledger at the URL is {target}: restore it into a "
            f"{kind} ledger"
        )
    revision = _sqlite_revision(src) if kind is Backend.SQLITE else _pgdump_revision(src, url)
    if revision is not None and revision not in migrations.revisions():
        raise BackupError(
            f"the backup is at schema revision {revision}, newer than this release "
            f"(head {migrations.head()}): restore it with the release that made it"
        )
    if kind is Backend.SQLITE:
        replaced = _restore_sqlite(src, _sqlite_path(url), force=force)
    else:
        replaced = _restore_postgresql(src, _url(url), force=force)
    return RestoreInfo(kind, revision, replaced)


def _refusal(tables: list[str], counts: Mapping[str, int]) -> BackupError:
    held = ", ".join(f"{name}: {n}" for name, n in counts.items())
    return TargetNotEmpty(
        f"basis data tujuan tidak kosong / the target database is not empty ({len(tables)} "
        f"tables{'; ' + held if held else ''}): restore into an empty database, or give --force "
        "to replace everything in it"
    )


# ---- SQLite -----------------------------------------------------------------------------------


def _sqlite_path(url: str | None) -> Path:
    database = _url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite ledger has nothing to back up or restore into")
    return Path(database)


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    )
    return [r[0] for r in rows]


def _sqlite_revision_of(conn: sqlite3.Connection) -> str | None:
    if migrations.VERSION_TABLE not in _sqlite_tables(conn):
        return None
    row = conn.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchone()  # noqa: S608
    return str(row[0]) if row else None


def _sqlite_revision(path: Path) -> str | None:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _sqlite_revision_of(conn)
    except sqlite3.DatabaseError as exc:
        raise UnreadableBackup(f"{path} is not a readable SQLite ledger: {exc}") from None
    finally:
        conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def _backup_sqlite(source: Path, tmp: Path) -> str | None:
    if not source.is_file():
        raise BackupError(f"no SQLite ledger at {source}")
    tmp.unlink(missing_ok=True)
    src, dst = _connect(source), _connect(tmp)
    try:
        src.backup(dst)  # one step (pages=-1): one read snapshot of the whole file
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = dst.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise BackupError(f"the backup failed its integrity check: {check}")
        return _sqlite_revision_of(dst)
    finally:
        dst.close()
        src.close()


def _restore_sqlite(src: Path, target: Path, *, force: bool) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, isolation_level=None)
    dst = _connect(target)
    try:
        tables = _sqlite_tables(dst)
        if tables and not force:
            counts: dict[str, int] = {}
            for name in ("member", "deposit"):
                if name in tables:
                    counts[name] = dst.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # noqa: S608
            raise _refusal(tables, counts)
        check = source.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise UnreadableBackup(f"{src} fails its integrity check: {check}")
        # Page by page under the target's write lock: other connections see the old ledger or
        # the restored one, never a mix; the file's own -wal and -shm stay consistent.
        source.backup(dst)
        return len(tables)
    finally:
        dst.close()
        source.close()


# ---- PostgreSQL -------------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it: the
    URL's own, or the one `services up` keeps for the role on our own server
    (:func:`wastebank.ledger.postgresql_conninfo`)."""
    env = dict(os.environ)
    conninfo, password = ledger.postgresql_conninfo(url)
    if password is not None:
        env["PGPASSWORD"] = password
    return conninfo, env


def _major(version: str) -> int:
    m = re.search(r"(\d+)(?:\.\d+)?", version)
    if m is None:
        raise BackupError(f"cannot tell the PostgreSQL version from {version!r}")
    return int(m.group(1))


def pg_tool(name: str, server_major: int) -> Path:
    """Debian's ``pg_dump`` or ``pg_restore`` for a server of ``server_major``: its own major
    (``/usr/lib/postgresql/<major>/bin``), else the nearest newer one (they read older servers
    and archives), else the one on PATH if it is recent enough."""
    found: dict[int, Path] = {}
    for path in POSTGRESQL_LIB.glob(f"*/bin/{name}"):
        if path.parent.parent.name.isdigit():
            found[int(path.parent.parent.name)] = path
    usable = sorted(major for major in found if major >= server_major)
    if usable:
        return found[usable[0]]
    on_path = shutil.which(name)
    if on_path is not None:
        result = subprocess.run(
            [on_path, "--version"], capture_output=True, text=True, check=False, timeout=30
        )
        if result.returncode == 0 and _major(result.stdout.split()[-1]) >= server_major:
            return Path(on_path)
    raise BackupError(
        f"{name} {server_major} not found: apt-get install postgresql-client-{server_major} "
        f"(the server is PostgreSQL {server_major})"
    )


def _pg_engine(url: URL) -> Engine:
    return ledger.make_engine(
        url.render_as_string(hide_password=False), writer=False, migrate=False
    )


def _server_major(engine: Engine) -> int:
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version_num")).scalar_one()
    return int(version) // 10000


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(
        cmd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=PG_TOOL_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise BackupError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")


def _backup_postgresql(url: URL, tmp: Path) -> str | None:
    engine = _pg_engine(url)
    try:
        major = _server_major(engine)
        revision = migrations.current(engine)
    finally:
        engine.dispose()
    conninfo, env = _libpq(url)
    tmp.unlink(missing_ok=True)
    _run(
        [
            str(pg_tool("pg_dump", major)),
            "--format=custom",
            f"--file={tmp}",
            f"--dbname={conninfo}",
        ],
        env,
        "pg_dump",
    )
    return revision


def _pgdump_revision(src: Path, url: str | None) -> str | None:
    """The schema revision inside a pg_dump archive (its ``alembic_version`` data)."""
    engine = _pg_engine(_url(url))
    try:
        major = _server_major(engine)
    finally:
        engine.dispose()
    cmd = [
        str(pg_tool("pg_restore", major)),
        "--data-only",
        f"--table={migrations.VERSION_TABLE}",
        "--file=-",
        str(src),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=PG_TOOL_TIMEOUT_S
    )
    if result.returncode != 0:
        raise UnreadableBackup(f"{src}: pg_restore cannot read it: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"COPY public.{migrations.VERSION_TABLE} ") and i + 1 < len(lines):
            value = lines[i + 1].strip()
            return None if value == "\\." else value
    return None


def _restore_postgresql(src: Path, url: URL, *, force: bool) -> int:
    engine = _pg_engine(url)
    try:
        major = _server_major(engine)
        with engine.begin() as conn:
            tables = list(
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "ORDER BY tablename"
                    )
                ).scalars()
            )
            if tables and not force:
                counts = {
                    name: int(conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one())  # noqa: S608
                    for name in ("member", "deposit")
                    if name in tables
                }
                raise _refusal(tables, counts)
            for name in tables:  # with --force; one transaction: all of them or none
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
        conninfo, env = _libpq(url)
        _run(
            [
                str(pg_tool("pg_restore", major)),
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={conninfo}",
                str(src),
            ],
            env,
            "pg_restore",
        )
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return len(tables)
