"""Store-and-forward on the gateway: a SQLite outbox that survives SIGKILL and power cuts.

An event is written here (with its sequence number, in one transaction) before anything is
published; a row is deleted only after the broker acknowledged its PUBLISH (PUBACK, QoS 1). The
outbox is bounded: past ``max_rows`` the oldest rows are dropped, and every drop is counted in the
database itself so it is reported, never silent.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0), ('dropped', 0);
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    created_at: datetime


class Outbox:
    def __init__(self, path: Path, *, max_rows: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, build: Callable[[int], tuple[str, bytes]]) -> int:
        """Allocate the next seq, build (topic, payload) from it and store both atomically."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            (last,) = db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
            seq = int(last) + 1
            topic, payload = build(seq)
            db.execute("UPDATE meta SET value=? WHERE key='last_seq'", (seq,))
            db.execute(
                "INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
                (topic, payload, datetime.now(UTC).isoformat()),
            )
            self._enforce_bound()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seq

    def _enforce_bound(self) -> None:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        excess = int(count) - self.max_rows
        if excess > 0:
            self._db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                (excess,),
            )
            self._db.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (excess,))

    def peek(self, limit: int = 100) -> list[OutboxRow]:
        rows = self._db.execute(
            "SELECT id, topic, payload, created_at FROM outbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [
            OutboxRow(int(r[0]), str(r[1]), bytes(r[2]), datetime.fromisoformat(r[3])) for r in rows
        ]

    def remove(self, row_id: int) -> None:
        self._db.execute("DELETE FROM outbox WHERE id=?", (row_id,))

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    @property
    def last_seq(self) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key='last_seq'").fetchone()
        return int(value)

    @property
    def dropped(self) -> int:
        (value,) = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
        return int(value)
