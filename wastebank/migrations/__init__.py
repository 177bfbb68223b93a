"""Schema migrations of the ledger (Alembic), shipped inside the package; no alembic.ini.

``upgrade`` brings a ledger to a revision (``head`` by default) in one transaction that holds the
migration lock, so that several processes starting at once never migrate twice: on PostgreSQL a
transaction-level advisory lock, on SQLite the write lock (the writer engine of
:func:`wastebank.ledger.make_engine` begins ``IMMEDIATE``). Whoever gets the lock second finds
the ledger at the revision already and does nothing. A ledger at the head is recognised with one
query, without the lock and without importing alembic, so opening one costs next to nothing.

A ledger from before migrations (tables made by ``create_all``, no ``alembic_version``) is
adopted by the baseline revision itself: it creates the tables and indexes that are missing and
adds the columns that are missing (on SQLite it also copies each table once, to name its
constraints), then records the revision like any other.

Writers (``wastebank ingest``, ``seed``, the ``deadletter`` commands) upgrade on start; readers
(the API) only check and refuse a ledger that is not at this release's head. ``wastebank ledger
migrate`` upgrades on its own; ``wastebank ledger current`` shows where a ledger is;
``wastebank ledger revision`` writes a new revision from the models (autogenerate).
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text

from wastebank.errors import SetupError

if TYPE_CHECKING:  # alembic itself is imported only to migrate, not to open a current ledger
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "LedgerSchemaError",
    "check",
    "current",
    "differences",
    "head",
    "new_revision",
    "revisions",
    "upgrade",
]

HERE = Path(__file__).resolve().parent
# Any fixed 64-bit number; the same in every release (b"wbledger").
PG_LOCK_KEY = int.from_bytes(b"wbledger", "big") - (1 << 63)
VERSION_TABLE = "alembic_version"
# Alembic keeps the running migration's context in a module global: one migration at a time in
# this process (the database's lock orders processes).
_IN_PROCESS = threading.Lock()


class LedgerSchemaError(SetupError):
    """The ledger's schema is not the one this release expects; the message says what to do."""


def config(connection: Connection | None = None) -> Config:
    """Alembic's settings, in code: the scripts in this package, and the connection to use."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    # rev ids are "0001", "0002", ...: files sort in the order they apply
    cfg.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    cfg.set_main_option("truncate_slug_length", "40")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


@functools.cache
def revisions() -> tuple[str, ...]:
    """The revisions this release ships, oldest first, from the file names alone (importing
    alembic costs ~10 MB and ~0.1 s; a process that finds its ledger current never does). The
    history is linear and file ``r<NNNN>_*.py`` holds revision ``NNNN`` (tests check both)."""
    names = (re.fullmatch(r"r(\d{4})_\w*\.py", p.name) for p in (HERE / "versions").iterdir())
    return tuple(sorted(m.group(1) for m in names if m))


def head() -> str:
    """The newest revision this release knows."""
    return revisions()[-1]


def current(bind: Engine | Connection) -> str | None:
    """The ledger's revision; None for an empty database or one from before migrations."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return current(conn)
    if not inspect(bind).has_table(VERSION_TABLE):
        return None
    heads = bind.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608
    if len(heads) > 1:
        raise LedgerSchemaError(f"the ledger is at several revisions at once: {heads}")
    return heads[0] if heads else None


def check(bind: Engine | Connection) -> None:
    """Raise :class:`LedgerSchemaError` unless the ledger is at this release's head."""
    rev, want = current(bind), head()
    if rev == want:
        return
    if rev is not None and rev not in revisions():
        raise LedgerSchemaError(
            f"buku besar pada revisi {rev}, lebih baru dari rilis ini / the ledger is at "
            f"revision {rev}, newer than this release (head {want}): upgrade wastebank"
        )
    raise LedgerSchemaError(
        f"skema buku besar belum mutakhir / the ledger's schema is at {rev or 'nothing'}, this "
        f"release needs {want}: run `wastebank ledger migrate` (or start the ingester)"
    )


def upgrade(engine: Engine, revision: str = "head") -> bool:
    """Upgrade the ledger to ``revision`` under the migration lock; True if anything ran.

    On SQLite ``engine`` must begin transactions IMMEDIATE (a writer engine of
    :func:`wastebank.ledger.make_engine`), so the lock is the database's write lock.
    """
    target = head() if revision == "head" else revision
    rev = current(engine)
    if rev == target:
        return False
    if rev is not None and rev not in revisions():
        check(engine)  # raises: newer than this release
    from alembic import command

    with _IN_PROCESS, engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:
            # Batch migrations copy and drop tables: foreign keys are checked once at the end
            # instead. The pragma is a no-op inside a transaction, so it is set before BEGIN.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
                command.upgrade(config(conn), revision)
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise LedgerSchemaError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
    return True


def differences(bind: Engine | Connection, metadata: MetaData) -> Sequence[object]:
    """What autogenerate would change to make the ledger match ``metadata`` (empty: they agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return differences(conn, metadata)
    ctx = MigrationContext.configure(bind, opts={"compare_type": True})
    return list(compare_metadata(ctx, metadata))


def new_revision(message: str) -> Path:
    """Write a new revision file from the models' differences to the current head (autogenerate
    against a scratch SQLite ledger at the head); return its path. Review it before committing:
    autogenerate misses renames and some type changes."""
    from alembic import command

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/ledger.db")
        try:
            with engine.begin() as conn:
                command.upgrade(config(conn), "head")
                number = int(head()) + 1
                script = command.revision(
                    config(conn), message, autogenerate=True, rev_id=f"{number:04d}"
                )
        finally:
            engine.dispose()
    _script.cache_clear()
    revisions.cache_clear()
    if script is None or isinstance(script, list):
        raise LedgerSchemaError("alembic wrote no single revision")
    path = Path(script.path)
    ruff = Path(sys.executable).parent / "ruff"  # the dev extra's; formats as `make lint` wants
    if ruff.exists():
        subprocess.run([ruff, "check", "--fix", "--quiet", path], check=False)
        subprocess.run([ruff, "format", "--quiet", path], check=False)
    return path
