"""The gateway's active alerts, kept in its SQLite file beside the outbox.

An alert is raised once when its condition starts and cleared once when it ends
(:meth:`gateway.recorder.Recorder.report`). Which alerts are raised is kept here, written in the
same transaction as the alert's outbox row: an alert is in this table if and only if its
"raised" message was stored and its "cleared" one was not. So a restarted gateway that sees a
condition still holding does not raise it again, and one that finds it ended clears it once.
The table is created on open (``CREATE TABLE IF NOT EXISTS``), so a file made by an older
release gets it (empty: what such a release had raised is not known, as before).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, cast

from wastebank.messages import ActiveAlert, AlertCode

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS active_alert (
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    since TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (code, subject)
);
"""


@dataclass(frozen=True)
class Raised:
    code: AlertCode
    subject: str
    since: datetime
    value: float | None


class AlertStore:
    """Active alerts by (code, subject), read once at start and kept in memory after."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(_SCHEMA)
        rows = db.execute("SELECT code, subject, since, value FROM active_alert").fetchall()
        self._active = {
            (str(code), str(subject)): Raised(
                cast(AlertCode, code), subject, datetime.fromisoformat(since), value
            )
            for code, subject, since, value in rows
        }
        self.on_change: Callable[[], None] = lambda: None
        """Called once an alert was raised or cleared (the gateway reports its health at once)."""

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._active

    def __len__(self) -> int:
        return len(self._active)

    def keys(self) -> frozenset[tuple[str, str]]:
        """The active alerts' (code, subject)."""
        return frozenset(self._active)

    def active(self) -> list[Raised]:
        """Oldest first."""
        return sorted(self._active.values(), key=lambda r: (r.since, r.code, r.subject))

    def raised(self, db: sqlite3.Connection, alert: Raised) -> None:
        """Record ``alert`` as active, on ``db`` inside the caller's transaction (the outbox's,
        with the alert's row). Call :meth:`commit_raised` once that transaction committed."""
        db.execute(
            "INSERT OR REPLACE INTO active_alert (code, subject, since, value) VALUES (?, ?, ?, ?)",
            (alert.code, alert.subject, alert.since.isoformat(), alert.value),
        )

    def cleared(self, db: sqlite3.Connection, code: str, subject: str) -> None:
        """Record the alert as cleared, inside the caller's transaction (as :meth:`raised`)."""
        db.execute("DELETE FROM active_alert WHERE code=? AND subject=?", (code, subject))

    def commit_raised(self, alert: Raised) -> None:
        self._active[(alert.code, alert.subject)] = alert
        self.on_change()

    def commit_cleared(self, code: str, subject: str) -> None:
        self._active.pop((code, subject), None)
        self.on_change()


def as_message(alert: Raised) -> ActiveAlert:
    return ActiveAlert(code=alert.code, subject=alert.subject, since=alert.since, value=alert.value)
