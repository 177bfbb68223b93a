"""The gateway's active alerts, kept in its SQLite file beside the outbox.

An alert is raised once when its condition starts and cleared once when it ends
(:meth:`gateway.recorder.Recorder.report`). Which alerts are raised is kept here, written in the
same transaction as the alert's outbox row: an alert is in this table if and only if its
"raised" message was stored and its "cleared" one was not. So a restarted gateway that sees a
condition still holding does not raise it again, and one that finds it ended clears it once.
The table is created on open (``CREATE TABLE IF NOT EXISTS``), so a file made by an older
release gets it (empty: what such a release had raised is not known, as before).

A flapping condition (a scale's overload coming and going every few seconds) is damped
(:class:`FlapGuard`): each raise and clear is an outbox row, counted against the outbox's
``max_rows`` with the deposits.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Generic, TypeVar, cast

from wastebank.messages import ActiveAlert, AlertCode

log = logging.getLogger("wastebank.gateway")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS active_alert (
    code TEXT NOT NULL,
    subject TEXT NOT NULL,
    since TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (code, subject)
);
"""


URGENCY: Final[dict[str, int]] = {
    code: rank
    for rank, code in enumerate(
        (
            # data at risk first: rows the broker refuses, rows the outbox dropped
            "publish_refused",
            "outbox_dropped",
            # a scale that weighs wrong or not at all
            "indicator_error",
            "overload",
            "underload",
            "zero_drift",
            # a device that is not heard: many at once are usually one cause (a hub, the power)
            "scale_offline",
        )
    )
}
"""Which active alerts a health report lists first when there are more than it holds."""


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

    def most_urgent(self, limit: int) -> tuple[list[Raised], int]:
        """At most ``limit`` active alerts, the most urgent first (:data:`URGENCY`, then oldest
        first), and how many were left out."""
        ranked = sorted(
            self._active.values(),
            key=lambda r: (URGENCY.get(r.code, len(URGENCY)), r.since, r.subject),
        )
        return ranked[:limit], max(0, len(ranked) - limit)

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


FLAP_RAISES: Final = 3
"""An alert raised this many times within :data:`FLAP_WINDOW_S` is flapping."""
FLAP_WINDOW_S: Final = 600.0
FLAP_HOLD_S: Final = 300.0
"""A flapping alert is cleared only once its condition has been over this long."""

T = TypeVar("T")


class FlapGuard(Generic[T]):
    """Which raise or clear of an alert is recorded (an outbox row), by the rule in
    docs/operations.md ("Scale states and gateway alerts"): an alert raised
    :data:`FLAP_RAISES` times within :data:`FLAP_WINDOW_S` is flapping; its clear is then held,
    the alert stays raised, until its condition has been over for :data:`FLAP_HOLD_S` (a new
    raise meanwhile undoes the held clear: neither is recorded). The transitions held are
    counted per alert and said when the clear goes out. So a flapping alert stores
    :data:`FLAP_RAISES` raises and as many clears, then one raise and one clear per quiet
    :data:`FLAP_HOLD_S` while it keeps flapping (at most 8 rows in any window).
    ``T``: what the caller keeps with a held clear (its condition). Monotonic time, from the
    caller."""

    def __init__(self) -> None:
        self._raises: dict[tuple[str, str], deque[float]] = {}
        self._pending: dict[tuple[str, str], tuple[float, T]] = {}
        self._held: dict[tuple[str, str], int] = {}

    def admit(self, key: tuple[str, str], active: bool, raised: bool, now: float, item: T) -> bool:
        """Whether the condition ``key`` now ``active`` (the alert ``raised`` or not) is a
        transition to record now."""
        if active:
            undone = self._pending.pop(key, None) is not None
            if undone:  # the held clear undone: the alert stays raised
                self._held[key] = self._held.get(key, 0) + 1
            elif raised:
                return False  # the condition seen again
            # a raise, stored or held: the window counts both, so a flap after a held
            # clear's release is held from its first clear
            self._raises.setdefault(key, deque(maxlen=FLAP_RAISES)).append(now)
            return not raised
        if not raised or key in self._pending:
            return False
        if not self._flapping(key, now):
            self._held.pop(key, None)
            return True
        self._pending[key] = (now, item)
        held = self._held.get(key, 0)
        self._held[key] = held + 1
        if held == 0:
            log.warning(
                "peringatan %s %s berkedip: %d kali dalam %d menit; dibersihkan setelah kondisinya "
                "selesai %d menit / alert flapping: raised %d times within %d min; cleared once "
                "its condition has been over for %d min",
                *key,
                FLAP_RAISES,
                FLAP_WINDOW_S // 60,
                FLAP_HOLD_S // 60,
                FLAP_RAISES,
                FLAP_WINDOW_S // 60,
                FLAP_HOLD_S // 60,
            )
        return False

    def _flapping(self, key: tuple[str, str], now: float) -> bool:
        raises = self._raises.get(key)
        return (
            raises is not None and len(raises) == FLAP_RAISES and now - raises[0] <= FLAP_WINDOW_S
        )

    def due(self, now: float) -> list[tuple[T, int]]:
        """The held clears whose condition has been over :data:`FLAP_HOLD_S`, each with the
        number of transitions held since its alert was raised; no longer held."""
        done = [key for key, (since, _) in self._pending.items() if now - since >= FLAP_HOLD_S]
        return [(self._pending.pop(key)[1], self._held.pop(key, 0)) for key in done]
