"""What the withdrawals page keeps in the gateway's SQLite file: the bank's withdrawal requests as
the central API last listed them (shown while the bank's internet is down), and the attendants'
decisions (approve, refuse, pay) queued for the central API until it has taken them.

Pure storage on the outbox's connection, like :mod:`gateway.attendant_store` (one file, one
connection, the gateway's event loop): no HTTP, no clock of its own (callers pass ``now``).

A queued action keeps who asked (the central API is called with that attendant's token, never
another's), and is sent in the order asked (``id``): an approval before the payment it allows.
A payment carries its ``payout_ref`` from the moment it is queued (a transfer's reference, or
for cash the gateway's own receipt number, :meth:`WithdrawalStore.cash_ref`): sent again after a
lost answer, the central API knows it for the same payment and pays nothing twice
(``wastebank.ledger.repeats_payment``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from gateway.outbox import write_transaction

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS withdrawal_copy (
    id INTEGER PRIMARY KEY,
    member_no TEXT NOT NULL,
    member_name TEXT,
    amount_idr INTEGER NOT NULL,
    method TEXT NOT NULL,
    destination TEXT,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    reason TEXT,
    paid_at TEXT,
    paid_by TEXT,
    payout_ref TEXT,
    dual_control INTEGER NOT NULL,
    available_idr INTEGER,
    synced_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS withdrawal_action (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    withdrawal_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT,
    payout_ref TEXT,
    asked_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at TEXT,
    error TEXT,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS withdrawal_action_state ON withdrawal_action (state, id);
CREATE INDEX IF NOT EXISTS withdrawal_action_withdrawal ON withdrawal_action (withdrawal_id, id);
CREATE TABLE IF NOT EXISTS withdrawal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Action = Literal["approve", "reject", "pay"]
ActionState = Literal["pending", "done", "refused"]
ACTIONS: Final[tuple[Action, ...]] = ("approve", "reject", "pay")


@dataclass(frozen=True)
class WithdrawalRow:
    """A withdrawal as the central API last gave it (``GET /api/banks/{bank}/withdrawals``, or
    the answer to an action sent from here)."""

    id: int
    member_no: str
    member_name: str | None
    amount_idr: int
    method: str
    destination: str | None
    status: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    paid_at: datetime | None
    paid_by: str | None
    payout_ref: str | None
    dual_control: bool
    available_idr: int | None
    synced_at: datetime


@dataclass(frozen=True)
class QueuedAction:
    id: int
    withdrawal_id: int
    action: Action
    by: str
    reason: str | None
    payout_ref: str | None
    asked_at: datetime
    state: ActionState
    attempts: int
    error: str | None
    done_at: datetime | None


_COPY_COLUMNS: Final = (
    "id, member_no, member_name, amount_idr, method, destination, status, requested_at,"
    " requested_by, decided_at, decided_by, reason, paid_at, paid_by, payout_ref, dual_control,"
    " available_idr, synced_at"
)
_ACTION_COLUMNS: Final = (
    "id, withdrawal_id, action, by, reason, payout_ref, asked_at, state, attempts, error, done_at"
)


def _at(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _row(r: Sequence[object]) -> WithdrawalRow:
    requested_at, synced_at = _at(r[7]), _at(r[17])
    assert requested_at is not None
    assert synced_at is not None
    return WithdrawalRow(
        id=int(str(r[0])),
        member_no=str(r[1]),
        member_name=_text(r[2]),
        amount_idr=int(str(r[3])),
        method=str(r[4]),
        destination=_text(r[5]),
        status=str(r[6]),
        requested_at=requested_at,
        requested_by=str(r[8]),
        decided_at=_at(r[9]),
        decided_by=_text(r[10]),
        reason=_text(r[11]),
        paid_at=_at(r[12]),
        paid_by=_text(r[13]),
        payout_ref=_text(r[14]),
        dual_control=bool(r[15]),
        available_idr=None if r[16] is None else int(str(r[16])),
        synced_at=synced_at,
    )


def _action(r: Sequence[object]) -> QueuedAction:
    asked_at = _at(r[6])
    assert asked_at is not None
    return QueuedAction(
        id=int(str(r[0])),
        withdrawal_id=int(str(r[1])),
        action=str(r[2]),  # type: ignore[arg-type]
        by=str(r[3]),
        reason=_text(r[4]),
        payout_ref=_text(r[5]),
        asked_at=asked_at,
        state=str(r[7]),  # type: ignore[arg-type]
        attempts=int(str(r[8])),
        error=_text(r[9]),
        done_at=_at(r[10]),
    )


def _utc(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


class WithdrawalStore:
    """The copy of the bank's withdrawals and the queue of decisions (on the outbox's
    connection; :class:`gateway.attendant_store.AttendantDb` makes it)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.executescript(_SCHEMA)

    # -- the copy --

    def _put(self, w: WithdrawalRow) -> None:
        self._db.execute(
            f"INSERT OR REPLACE INTO withdrawal_copy ({_COPY_COLUMNS})"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                w.id,
                w.member_no,
                w.member_name,
                w.amount_idr,
                w.method,
                w.destination,
                w.status,
                _utc(w.requested_at),
                w.requested_by,
                _utc(w.decided_at),
                w.decided_by,
                w.reason,
                _utc(w.paid_at),
                w.paid_by,
                w.payout_ref,
                int(w.dual_control),
                w.available_idr,
                _utc(w.synced_at),
            ),
        )

    def replace(self, rows: Iterable[WithdrawalRow], now: datetime) -> int:
        """The central API's list now: kept as the copy. A withdrawal it no longer lists (older
        than its page) is forgotten unless an action on it still waits here."""
        rows = list(rows)
        with write_transaction(self._db) as db:
            for w in rows:
                self._put(w)
            listed = [w.id for w in rows]
            marks = ",".join("?" * len(listed)) or "NULL"
            db.execute(
                f"DELETE FROM withdrawal_copy WHERE id NOT IN ({marks})"  # noqa: S608
                " AND id NOT IN (SELECT withdrawal_id FROM withdrawal_action"
                " WHERE state='pending')",
                listed,
            )
            db.execute(
                "INSERT OR REPLACE INTO withdrawal_meta (key, value) VALUES ('synced_at', ?)",
                (_utc(now),),
            )
        return len(rows)

    def update(self, w: WithdrawalRow) -> None:
        """One withdrawal as the central API answered an action on it."""
        self._put(w)

    def synced_at(self) -> datetime | None:
        row = self._db.execute("SELECT value FROM withdrawal_meta WHERE key='synced_at'").fetchone()
        return None if row is None else _at(row[0])

    def get(self, withdrawal_id: int) -> WithdrawalRow | None:
        row = self._db.execute(
            f"SELECT {_COPY_COLUMNS} FROM withdrawal_copy WHERE id=?",  # noqa: S608
            (withdrawal_id,),
        ).fetchone()
        return None if row is None else _row(row)

    def rows(self) -> list[WithdrawalRow]:
        """Every withdrawal of the copy, newest first."""
        rows = self._db.execute(
            f"SELECT {_COPY_COLUMNS} FROM withdrawal_copy ORDER BY id DESC"  # noqa: S608
        ).fetchall()
        return [_row(r) for r in rows]

    # -- the queue --

    def add(
        self,
        withdrawal_id: int,
        action: Action,
        by: str,
        now: datetime,
        *,
        reason: str | None = None,
        payout_ref: str | None = None,
    ) -> QueuedAction:
        """Queue an action (``pending``); the caller checked it may be asked."""
        cur = self._db.execute(
            "INSERT INTO withdrawal_action (withdrawal_id, action, by, reason, payout_ref,"
            " asked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (withdrawal_id, action, by, reason, payout_ref, _utc(now)),
        )
        found = self.action(int(cur.lastrowid or 0))
        assert found is not None
        return found

    def set_payout_ref(self, action_id: int, payout_ref: str) -> QueuedAction:
        """A cash payment's reference, drawn from its own id (:meth:`cash_ref`) right after it
        was queued, before it is ever sent."""
        self._db.execute(
            "UPDATE withdrawal_action SET payout_ref=? WHERE id=? AND state='pending'",
            (payout_ref, action_id),
        )
        found = self.action(action_id)
        assert found is not None
        return found

    @staticmethod
    def cash_ref(gateway_id: str, install: str, action_id: int) -> str:
        """A cash payout's reference: this gateway, this file's install, the action's number
        (unique for ever: a new file draws a new install), also the payment receipt's number."""
        return f"{gateway_id}.{install}.p{action_id}"

    def action(self, action_id: int) -> QueuedAction | None:
        row = self._db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM withdrawal_action WHERE id=?",  # noqa: S608
            (action_id,),
        ).fetchone()
        return None if row is None else _action(row)

    def due(self, now: datetime) -> list[QueuedAction]:
        """Pending actions whose retry time has come, in the order they were asked."""
        rows = self._db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM withdrawal_action"  # noqa: S608
            " WHERE state='pending' AND (retry_at IS NULL OR retry_at <= ?) ORDER BY id",
            (_utc(now),),
        ).fetchall()
        return [_action(r) for r in rows]

    def pending(self) -> int:
        (n,) = self._db.execute(
            "SELECT count(*) FROM withdrawal_action WHERE state='pending'"
        ).fetchone()
        return int(n)

    def of(self, withdrawal_ids: Iterable[int] | None = None) -> dict[int, list[QueuedAction]]:
        """The actions asked here, by withdrawal (oldest first): of ``withdrawal_ids``, or of
        every withdrawal."""
        rows = self._db.execute(
            f"SELECT {_ACTION_COLUMNS} FROM withdrawal_action ORDER BY id"  # noqa: S608
        ).fetchall()
        wanted = None if withdrawal_ids is None else set(withdrawal_ids)
        out: dict[int, list[QueuedAction]] = {}
        for r in rows:
            a = _action(r)
            if wanted is None or a.withdrawal_id in wanted:
                out.setdefault(a.withdrawal_id, []).append(a)
        return out

    def done(self, action_id: int, now: datetime) -> None:
        self._db.execute(
            "UPDATE withdrawal_action SET state='done', done_at=?, error=NULL, retry_at=NULL"
            " WHERE id=?",
            (_utc(now), action_id),
        )

    def refused(self, action_id: int, error: str, now: datetime) -> None:
        """The central API refused it for good (a 403, 409, 422): shown, never sent again."""
        self._db.execute(
            "UPDATE withdrawal_action SET state='refused', error=?, done_at=?, retry_at=NULL"
            " WHERE id=?",
            (error[:500], _utc(now), action_id),
        )

    def retry(self, action_id: int, error: str, retry_at: datetime) -> None:
        self._db.execute(
            "UPDATE withdrawal_action SET attempts=attempts+1, error=?, retry_at=? WHERE id=?",
            (error[:500], _utc(retry_at), action_id),
        )

    def waiting(self, action_id: int, error: str) -> None:
        """Not sent this round (no token of its attendant, an outage): why, for the page."""
        self._db.execute(
            "UPDATE withdrawal_action SET error=? WHERE id=?", (error[:500], action_id)
        )

    def prune(self, before: datetime) -> int:
        """Forget settled actions older than ``before`` (the ledger has the record)."""
        cur = self._db.execute(
            "DELETE FROM withdrawal_action WHERE state != 'pending' AND asked_at < ?",
            (_utc(before),),
        )
        return int(cur.rowcount)
