"""Store-and-forward on the gateway: a SQLite outbox that survives SIGKILL and power cuts.

An event is written here (with its sequence number, in one transaction) before anything is
published; a row is deleted only after the broker accepted its PUBLISH (PUBACK, QoS 1). A PUBACK
with a failure reason code (MQTT 5: e.g. 0x87 "Not authorized" by the broker's ACL) keeps the row,
marked refused with that code, and holds it back from the drain for a while (see
:meth:`Outbox.mark_refused`). The outbox is bounded by size (past ``max_rows`` the oldest rows go)
and by age (rows older than ``max_age`` go); every drop is counted in the database itself so it
is reported, never silent.

The same file keeps the scales' calibration checks (:class:`CalibrationLog`).

**Install identity.** Sequence numbers start at 1 in a new file, so an event id cannot be the
sequence number alone: the file also holds an *install* (5 random characters of Crockford's base
32, drawn when the file is created), and every id this gateway issues is
``{gateway}.{install}.{seq}`` (``wastebank.messages.device_event_id``). A replaced SD card, a
reinstalled Pi or a second Pi flashed with the same site file creates a new file and so a new
install: its ids never meet the old ones, without any network at the moment of the swap. The file
also records the machine it was created on (``/etc/machine-id``); opened on another machine (the
card moved to a new Pi, or an image with this file cloned onto one whose machine id was made
anew) it draws a new install for the events it numbers from then on, and keeps its rows. Two
Pis cloned *with* this file and the same machine id share an install: the ledger then sees the
same id with other content and says so (a ``conflict`` dead letter, an alert), never drops one.

The install is also written beside the file (``outbox.db.install``, :data:`INSTALL_MARKER`): a
file without an install while that marker names one (the file was emptied: truncated, its WAL
lost, moved aside; or recovered with its install removed, docs/deploy-pi.md §7a) is logged as a
warning naming the install it replaces, whose unsent events not in the file are lost.

**A damaged file** (SQLite: "database disk image is malformed", "file is not a database", or
``PRAGMA quick_check`` not ``ok`` at open) raises :class:`OutboxDamaged`: the gateway stops with
a message saying what to do (docs/deploy-pi.md §7a), and never starts a new file over it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from wastebank.errors import SetupError
from wastebank.messages import new_install

log = logging.getLogger("wastebank.gateway.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS calibration_check (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scale_id TEXT NOT NULL,
    reference_g INTEGER NOT NULL,
    reading_g INTEGER NOT NULL,
    checked_at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0), ('dropped', 0);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clock_sync (boot TEXT PRIMARY KEY, synced_at TEXT NOT NULL);
"""
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
INSTALL_MARKER = ".install"
"""Suffix of the file beside the outbox that names its install."""
_DAMAGED_CODES = frozenset({11, 26})
"""SQLITE_CORRUPT, SQLITE_NOTADB (primary codes): the file, not the moment, is at fault."""


class OutboxDamaged(SetupError):
    """The gateway's file cannot be read as a database: a person must recover or replace it
    (gateway.run stops the process with its own exit status)."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    """Whether SQLite's error says the file is damaged (not locked, full or read-only)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _DAMAGED_CODES
    return type(exc) is sqlite3.DatabaseError  # its subclasses are the other kinds


def machine_id(files: Iterable[Path] = MACHINE_ID_FILES) -> str:
    """This machine's id (systemd's), or "" where there is none (a container, another OS)."""
    for file in files:
        try:
            text = file.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return ""


PRIVATE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_file(path: Path) -> None:
    """Make ``path`` readable and writable by its owner only, before SQLite opens it.

    The gateway's file holds the key that signs attendant sessions, the attendants' cached
    password hashes and the deposits not yet sent: a new file is created 0600 (no moment at
    the umask's 0644), an existing one (from an older release) is set to 0600, and so are its
    WAL, shared-memory and journal files if they are there. SQLite creates those with the mode
    of the database file, so once it is 0600 they are too. A new directory is 0700; an existing
    one is left as it is (it may be systemd's StateDirectory, or shared).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # (a symlinked file is followed, as SQLite follows it: the outbox may live on a USB SSD)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)  # an existing file keeps its mode through os.open
    finally:
        os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", PRIVATE_MODE)


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction on the gateway's file (its connection is in autocommit mode):
    ``BEGIN IMMEDIATE`` takes the write lock at once, so two writers never meet half way;
    committed when the block ends, rolled back if it raises (anything, a cancellation too)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# Columns a file made by an older release lacks (it gets them on open). A row the broker refused:
# the reason code of its last PUBACK, how many times it was refused, when last, and the wall-clock
# time (Unix seconds) before which the drain leaves it alone.
_REFUSAL_COLUMNS = {
    "refused_code": "INTEGER",
    "refused_count": "INTEGER NOT NULL DEFAULT 0",
    "refused_at": "TEXT",
    "retry_at": "REAL",
}
MAX_HOLD_S = 3600.0
"""The longest a refused row is held back before it is tried again."""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    created_at: datetime
    refused_code: int | None = None
    """The reason code of the PUBACK that last refused it (None: never refused)."""


class OutboxWrite:
    """Inside :meth:`Outbox.transaction`: numbers and rows, committed together."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def next_seq(self, sequence: str = "deposit") -> int:
        """The next number of ``sequence`` (kept only if the transaction commits)."""
        key = _seq_key(sequence)
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0)", (key,))
        (last,) = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        seq = int(last) + 1
        self._db.execute("UPDATE meta SET value=? WHERE key=?", (seq, key))
        return seq

    def put(self, topic: str, payload: bytes) -> int:
        """A row to publish; its id."""
        cur = self._db.execute(
            "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
            (topic, payload, datetime.now(UTC).isoformat()),
        )
        return int(cur.lastrowid or 0)


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 100_000,
        max_age: timedelta | None = None,
        max_hold_s: float = MAX_HOLD_S,
        machine: str | None = None,
    ) -> None:
        """``machine``: this machine's id (default: :func:`machine_id`)."""
        private_file(path)
        self.path = path
        self.max_rows = max_rows
        self.max_age = max_age
        self.max_hold_s = max_hold_s
        self._db = sqlite3.connect(path, isolation_level=None)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if is_damage(exc):
                raise OutboxDamaged(path, str(exc)) from exc
            raise
        except OutboxDamaged:
            self._db.close()
            raise
        self.install = self._install(machine_id() if machine is None else machine)

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # every page read once: damage found now, with a message, not by a task later
        problems = [str(r[0]) for r in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise OutboxDamaged(self.path, "; ".join(problems)[:500])
        self._db.executescript(_SCHEMA)
        have = {str(r[1]) for r in self._db.execute("PRAGMA table_info(outbox)")}
        for name, decl in _REFUSAL_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE outbox ADD COLUMN {name} {decl}")

    def _install(self, machine: str) -> str:
        """The install this file numbers events under: drawn on creation, and again when the
        file is opened on another machine than the one it was last opened on."""
        with write_transaction(self._db) as db:
            rows = dict(db.execute("SELECT key, value FROM identity").fetchall())
            install, known = rows.get("install"), rows.get("machine", "")
            previous_unknown = install is None
            moved = install is not None and bool(machine) and bool(known) and machine != known
            if install is None or moved:
                previous, install = install, new_install()
                db.execute(
                    "INSERT OR REPLACE INTO identity (key, value) VALUES ('install', ?)", (install,)
                )
                if moved:
                    log.warning(
                        "berkas outbox dari mesin lain: install baru %s (sebelumnya %s) / "
                        "outbox file from another machine: new install %s (was %s)",
                        install,
                        previous,
                        install,
                        previous,
                    )
            if machine and machine != known:
                db.execute(
                    "INSERT OR REPLACE INTO identity (key, value) VALUES ('machine', ?)", (machine,)
                )
        self._mark(str(install), created=previous_unknown)
        return str(install)

    def _mark(self, install: str, *, created: bool) -> None:
        """Write the install beside the file; a file just created where the marker names
        another install is a warning (what that install had not sent is not in this file)."""
        marker = Path(f"{self.path}{INSTALL_MARKER}")
        try:
            before = marker.read_text().strip()
        except FileNotFoundError:
            before = ""
        if created and before and before != install:
            (waiting,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            log.warning(
                "berkas outbox %(path)s tanpa install (dibuat baru atau dipulihkan): install baru "
                "%(new)s, sebelumnya %(old)s; %(rows)d baris menunggu di berkas ini, peristiwa "
                "%(old)s yang belum terkirim dan tidak ada di sini hilang (docs/deploy-pi.md §7a) "
                "/ the outbox file %(path)s has no install (created anew or recovered): new "
                "install %(new)s where %(old)s was before; %(rows)d rows wait in this file, the "
                "events of %(old)s not sent and not in it are lost",
                {"path": self.path, "new": install, "old": before, "rows": waiting},
            )
        if before != install:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
            with os.fdopen(fd, "w") as out:
                out.write(install + "\n")

    def clock_synced_at(self, boot: str) -> datetime | None:
        """The first clock synchronization remembered for the boot ``boot`` (gateway.clock)."""
        row = self._db.execute("SELECT synced_at FROM clock_sync WHERE boot=?", (boot,)).fetchone()
        return None if row is None else datetime.fromisoformat(str(row[0]))

    def remember_clock_sync(self, boot: str, at: datetime) -> None:
        """Keep this boot's first clock synchronization (one boot's: an earlier boot's goes)."""
        with write_transaction(self._db) as db:
            db.execute("DELETE FROM clock_sync")
            db.execute(
                "INSERT INTO clock_sync (boot, synced_at) VALUES (?, ?)", (boot, at.isoformat())
            )

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection to the gateway's file, for the tables kept beside the outbox (the
        calibration checks, the attendant's store): one file, one connection, used on the
        gateway's event loop only. Write inside :meth:`transaction` to keep a row of theirs
        with an outbox row, or :func:`write_transaction` on their own."""
        return self._db

    @contextlib.contextmanager
    def transaction(self) -> Iterator[OutboxWrite]:
        """Store events, each with the next number of its sequence, and whatever else is
        written on :attr:`connection` inside the block: all of it or (the block raised) none,
        no number used. The bounds (``max_rows``) are enforced before the commit."""
        with write_transaction(self._db) as db:
            yield OutboxWrite(db)
            self._enforce_bound()

    def add(self, build: Callable[[int], tuple[str, bytes]], sequence: str = "deposit") -> int:
        """Allocate the next number of ``sequence``, build (topic, payload) from it, store both.

        Each kind of event has its own sequence ("deposit", "alert", ...), so deposit numbers
        have no gaps an auditor would have to explain.
        """
        with self.transaction() as write:
            seq = write.next_seq(sequence)
            write.put(*build(seq))
        return seq

    def expire(self, now: datetime | None = None) -> int:
        """Drop rows older than ``max_age`` (counted in ``dropped``); return how many."""
        if self.max_age is None:
            return 0
        cutoff = ((now or datetime.now(UTC)) - self.max_age).isoformat()
        with write_transaction(self._db) as db:
            gone = db.execute("DELETE FROM outbox WHERE created_at < ?", (cutoff,)).rowcount
            if gone:
                db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (gone,))
        return int(gone)

    def oldest_age(self, now: datetime | None = None) -> timedelta | None:
        row = self._db.execute("SELECT min(created_at) FROM outbox").fetchone()
        if row is None or row[0] is None:
            return None
        return (now or datetime.now(UTC)) - datetime.fromisoformat(row[0])

    def _enforce_bound(self) -> None:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        excess = int(count) - self.max_rows
        if excess > 0:
            self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (excess,),
            )
            self._db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (excess,))

    def peek(self, limit: int = 100, now: float | None = None) -> list[OutboxRow]:
        """The oldest rows due for publishing: never refused, or refused and due for a retry.

        A ``retry_at`` further ahead than ``max_hold_s`` counts as due: the clock went back
        (a Pi without a real-time clock before NTP), and no row waits longer than that.
        """
        now = time.time() if now is None else now
        rows = self._db.execute(
            "SELECT id, topic, payload, created_at, refused_code FROM outbox"
            " WHERE retry_at IS NULL OR retry_at <= ? OR retry_at > ? ORDER BY id LIMIT ?",
            (now, now + self.max_hold_s, limit),
        ).fetchall()
        return [
            OutboxRow(
                int(r[0]),
                str(r[1]),
                bytes(r[2]),
                datetime.fromisoformat(r[3]),
                None if r[4] is None else int(r[4]),
            )
            for r in rows
        ]

    def mark_refused(
        self, refusals: Iterable[tuple[int, int]], *, hold_s: float, now: float | None = None
    ) -> None:
        """Keep rows the broker refused, each with its reason code, ``(row id, code)``: held back
        from :meth:`peek` for ``hold_s``, doubled for each earlier refusal of the row, at most
        ``max_hold_s``; in one transaction."""
        refusals = list(refusals)
        if not refusals:
            return
        now = time.time() if now is None else now
        at = datetime.fromtimestamp(now, UTC).isoformat()
        with write_transaction(self._db) as db:
            db.executemany(
                "UPDATE outbox SET refused_code=?, refused_at=?,"
                " retry_at=? + min(?, ? * (1 << min(refused_count, 30))),"
                " refused_count=refused_count+1 WHERE id=?",
                [(code, at, now, self.max_hold_s, hold_s, i) for i, code in refusals],
            )

    def release_refused(self) -> int:
        """Make every held-back row due now (a restart: the site file or the credentials may
        have been fixed); they stay marked refused until accepted. Return how many."""
        cur = self._db.execute("UPDATE outbox SET retry_at=NULL WHERE retry_at IS NOT NULL")
        return int(cur.rowcount)

    def refused(self) -> dict[int, int]:
        """Rows kept because the broker refused them, by the reason code of the last refusal."""
        rows = self._db.execute(
            "SELECT refused_code, count(*) FROM outbox WHERE refused_code IS NOT NULL"
            " GROUP BY refused_code"
        ).fetchall()
        return {int(code): int(n) for code, n in rows}

    def next_retry(self) -> float | None:
        """When the first held-back row is due (wall clock, Unix seconds); None: none is."""
        (at,) = self._db.execute("SELECT min(retry_at) FROM outbox").fetchone()
        return None if at is None else float(at)

    def remove(self, row_id: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE id=?", (row_id,))

    def remove_many(self, row_ids: list[int]) -> None:
        """Delete acknowledged rows in one transaction (one fsync, not one per row)."""
        if not row_ids:
            return
        with write_transaction(self._db) as db:
            db.executemany("DELETE FROM outbox WHERE id=?", [(i,) for i in row_ids])

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    @property
    def last_seq(self) -> int:
        """The last deposit sequence number handed out."""
        return self.last_of("deposit")

    def last_of(self, sequence: str) -> int:
        row = self._db.execute(
            "SELECT value FROM meta WHERE key=?", (_seq_key(sequence),)
        ).fetchone()
        return int(row[0]) if row else 0

    @property
    def dropped(self) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        return int(value)


def _seq_key(sequence: str) -> str:
    return "last_seq" if sequence == "deposit" else f"last_seq:{sequence}"


@dataclass(frozen=True)
class CalibrationCheck:
    id: int
    scale_id: str
    reference_g: int
    reading_g: int
    checked_at: datetime
    note: str

    @property
    def error_g(self) -> int:
        return self.reading_g - self.reference_g

    @property
    def version(self) -> str:
        """What deposits weighed after this check carry as their calibration version."""
        return f"cal-{self.id}"


class CalibrationLog:
    """Calibration checks per scale: a known reference mass, what the scale read, when."""

    def __init__(self, outbox: Outbox) -> None:
        self._db = outbox.connection

    def record(
        self, scale_id: str, reference_g: int, reading_g: int, note: str = ""
    ) -> CalibrationCheck:
        at = datetime.now(UTC)
        cur = self._db.execute(
            "INSERT INTO calibration_check (scale_id, reference_g, reading_g, checked_at, note)"
            " VALUES (?, ?, ?, ?, ?)",
            (scale_id, reference_g, reading_g, at.isoformat(), note),
        )
        return CalibrationCheck(int(cur.lastrowid or 0), scale_id, reference_g, reading_g, at, note)

    def checks(self, scale_id: str) -> list[CalibrationCheck]:
        rows = self._db.execute(
            "SELECT id, scale_id, reference_g, reading_g, checked_at, note FROM calibration_check"
            " WHERE scale_id=? ORDER BY id",
            (scale_id,),
        ).fetchall()
        return [
            CalibrationCheck(
                int(r[0]), r[1], int(r[2]), int(r[3]), datetime.fromisoformat(r[4]), r[5]
            )
            for r in rows
        ]

    def latest(self, scale_id: str) -> CalibrationCheck | None:
        checks = self.checks(scale_id)
        return checks[-1] if checks else None
