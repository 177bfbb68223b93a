"""What the stock page keeps in the gateway's SQLite file: stock movements (sales to a pengepul,
transfers to the induk, residue) queued for the central API, and the last stock and pengepul
list it gave (shown while the bank's internet is down).

A movement is kept here first, under the key the page drew for it (its client id), then sent;
the central API gets ``{gateway}.{key}`` as its ``idempotency_key``, so a movement sent again
(an answer lost, a restart, the page's button pressed twice) is recorded once
(``wastebank.ledger.movement_by_key``). Pure storage on the outbox's connection, like
:mod:`gateway.attendant_store`: no HTTP, no clock of its own (callers pass ``now``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from gateway.outbox import write_transaction

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS stock_move (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    by TEXT NOT NULL,
    body TEXT NOT NULL,
    asked_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at TEXT,
    error TEXT,
    answer TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS stock_move_state ON stock_move (state, asked_at);
CREATE TABLE IF NOT EXISTS stock_copy (key TEXT PRIMARY KEY, body TEXT NOT NULL, at TEXT NOT NULL);
"""

MoveKind = Literal["sale", "transfer", "residue"]
MoveState = Literal["pending", "sent", "refused"]
KINDS: Final[tuple[MoveKind, ...]] = ("sale", "transfer", "residue")


@dataclass(frozen=True)
class QueuedMove:
    """A movement asked at this gateway: its ``body`` as the central API takes it (without the
    key), who asked, its state and, once sent, the central API's answer (``answer``)."""

    key: str
    kind: MoveKind
    by: str
    body: dict[str, Any]
    asked_at: datetime
    state: MoveState
    attempts: int
    retry_at: datetime | None
    error: str | None
    answer: dict[str, Any] | None
    done_at: datetime | None


def _at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(UTC)


def _row(r: tuple[Any, ...]) -> QueuedMove:
    key, kind, by, body, asked, state, attempts, retry, error, answer, done = r
    return QueuedMove(
        key=str(key),
        kind=kind,
        by=str(by),
        body=json.loads(body),
        asked_at=datetime.fromisoformat(asked).astimezone(UTC),
        state=state,
        attempts=int(attempts),
        retry_at=_at(retry),
        error=error,
        answer=None if answer is None else json.loads(answer),
        done_at=_at(done),
    )


_COLUMNS: Final = "key, kind, by, body, asked_at, state, attempts, retry_at, error, answer, done_at"


class StockStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(_SCHEMA)

    def add(
        self, key: str, kind: MoveKind, by: str, body: dict[str, Any], now: datetime
    ) -> tuple[QueuedMove, bool]:
        """Keep a movement to send; the one already kept under ``key`` (and False) when the page
        asked for it before."""
        with write_transaction(self._db) as db:
            done = self._get(db, key)
            if done is not None:
                return done, False
            db.execute(
                "INSERT INTO stock_move (key, kind, by, body, asked_at) VALUES (?, ?, ?, ?, ?)",
                (key, kind, by, json.dumps(body, sort_keys=True), now.isoformat()),
            )
            made = self._get(db, key)
        assert made is not None
        return made, True

    @staticmethod
    def _get(db: sqlite3.Connection, key: str) -> QueuedMove | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM stock_move WHERE key = ?", (key,)).fetchone()  # noqa: S608
        return None if row is None else _row(row)

    def get(self, key: str) -> QueuedMove | None:
        return self._get(self._db, key)

    def due(self, now: datetime) -> list[QueuedMove]:
        """Pending movements to send now, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM stock_move WHERE state = 'pending'"  # noqa: S608
            " AND (retry_at IS NULL OR retry_at <= ?) ORDER BY asked_at, key",
            (now.isoformat(),),
        ).fetchall()
        return [_row(r) for r in rows]

    def pending(self) -> int:
        (n,) = self._db.execute(
            "SELECT count(*) FROM stock_move WHERE state = 'pending'"
        ).fetchone()
        return int(n)

    def recent(self, since: datetime, limit: int = 100) -> list[QueuedMove]:
        """Movements asked here since ``since`` or still pending, newest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM stock_move WHERE asked_at >= ? OR state = 'pending'"  # noqa: S608
            " ORDER BY asked_at DESC, key LIMIT ?",
            (since.isoformat(), limit),
        ).fetchall()
        return [_row(r) for r in rows]

    def sent(self, key: str, answer: dict[str, Any], now: datetime) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE stock_move SET state = 'sent', answer = ?, error = NULL, done_at = ?,"
                " attempts = attempts + 1 WHERE key = ?",
                (json.dumps(answer, sort_keys=True), now.isoformat(), key),
            )

    def refused(self, key: str, error: str, now: datetime) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE stock_move SET state = 'refused', error = ?, done_at = ?,"
                " attempts = attempts + 1 WHERE key = ?",
                (error, now.isoformat(), key),
            )

    def retry(self, key: str, error: str, at: datetime) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "UPDATE stock_move SET error = ?, retry_at = ?, attempts = attempts + 1"
                " WHERE key = ?",
                (error, at.isoformat(), key),
            )

    def prune(self, before: datetime) -> None:
        """Forget movements settled before ``before`` (pending ones stay)."""
        with write_transaction(self._db) as db:
            db.execute(
                "DELETE FROM stock_move WHERE state != 'pending' AND done_at < ?",
                (before.isoformat(),),
            )

    # ---- the last copies the central API gave -----------------------------------------------

    def keep(self, key: str, body: Any, now: datetime) -> None:
        with write_transaction(self._db) as db:
            db.execute(
                "INSERT OR REPLACE INTO stock_copy (key, body, at) VALUES (?, ?, ?)",
                (key, json.dumps(body, sort_keys=True), now.isoformat()),
            )

    def copy(self, key: str) -> tuple[Any, datetime] | None:
        row = self._db.execute("SELECT body, at FROM stock_copy WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return json.loads(row[0]), datetime.fromisoformat(row[1]).astimezone(UTC)
