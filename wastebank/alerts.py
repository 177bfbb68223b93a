"""Alerts for the city's operators (admins): conditions the system found and must say out loud.

A TPS sensor's alerts live with the TPS (``tps_alert``); a gateway's own alerts travel on MQTT.
These are the system's: a deposit that came twice with other content (``deposit_conflict``), two
gateways running with one gateway id (``gateway_clash``), InfluxDB no longer matching the ledger
(``influx_drift``), a client refused another identity's MQTT session (``session_takeover``, one
per username and client id: wastebank/broker_events.py). Each is raised once per (code, subject)
while it is active: a partial unique index on both databases, so two ingesters raising the same
alert at once store one row, and a redelivered conflict does not raise it again. An admin clears
it (``wastebank alert clear``), or the code that raised it does when the condition ends.

Where they show: ``wastebank alert list``, ``GET /api/admin/alerts``, ``/health`` (the count of
active ones) and the log (a warning when raised).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Integer, String, Text, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from wastebank.ledger import Base, UtcDateTime, utcnow

log = logging.getLogger("wastebank.alerts")


class AlertCode(StrEnum):
    DEPOSIT_CONFLICT = "deposit_conflict"
    GATEWAY_CLASH = "gateway_clash"
    INFLUX_DRIFT = "influx_drift"
    SESSION_TAKEOVER = "session_takeover"


class SystemAlert(Base):
    """One alert: raised once, cleared once (``cleared_at`` None: active)."""

    __tablename__ = "system_alert"
    __table_args__ = (
        Index(
            "uq_system_alert_active",
            "code",
            "subject",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(500))
    detail: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: what an operator needs")
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cleared_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    clear_note: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def details(self) -> dict[str, Any]:
        loaded = json.loads(self.detail or "{}")
        return loaded if isinstance(loaded, dict) else {}


def raise_alert(
    session: Session,
    code: AlertCode,
    subject: str,
    message: str,
    detail: dict[str, Any] | None = None,
) -> SystemAlert | None:
    """Raise ``code`` for ``subject`` unless it is active already; return the new alert (None:
    it was active). Runs in a savepoint of ``session``'s transaction and does not commit, so an
    alert is kept exactly when the write that found it is."""
    subject = subject[:200]
    if _active(session, code, subject) is not None:
        return None
    alert = SystemAlert(
        code=str(code),
        subject=subject,
        message=message[:500],
        detail=json.dumps(detail or {}, default=str, sort_keys=True),
        raised_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(alert)
    except IntegrityError:  # raised by another process between our read and our write
        return None
    log.warning("peringatan / alert raised: %s %s: %s", code, subject, message)
    return alert


def clear_alert(
    session: Session, code: AlertCode | str, subject: str, *, by: str, note: str = ""
) -> bool:
    """Clear the active ``code`` alert for ``subject``; False when none is active. No commit."""
    result = session.execute(
        update(SystemAlert)
        .where(
            SystemAlert.code == str(code),
            SystemAlert.subject == subject[:200],
            SystemAlert.cleared_at.is_(None),
        )
        .values(cleared_at=utcnow(), cleared_by=by[:80], clear_note=note or None)
    )
    return bool(getattr(result, "rowcount", 0))


def clear_by_id(session: Session, alert_id: int, *, by: str, note: str = "") -> SystemAlert | None:
    """Clear one alert by its id; None when there is no such active alert. No commit."""
    alert = session.get(SystemAlert, alert_id)
    if alert is None or alert.cleared_at is not None:
        return None
    alert.cleared_at, alert.cleared_by, alert.clear_note = utcnow(), by[:80], note or None
    session.flush()
    return alert


def _active(session: Session, code: AlertCode | str, subject: str) -> SystemAlert | None:
    return session.scalar(
        select(SystemAlert).where(
            SystemAlert.code == str(code),
            SystemAlert.subject == subject,
            SystemAlert.cleared_at.is_(None),
        )
    )


def alerts(
    session: Session, *, active_only: bool = True, code: str | None = None, limit: int = 200
) -> list[SystemAlert]:
    """Alerts, newest first: the active ones, or all of them."""
    stmt = select(SystemAlert).order_by(SystemAlert.id.desc()).limit(limit)
    if active_only:
        stmt = stmt.where(SystemAlert.cleared_at.is_(None))
    if code is not None:
        stmt = stmt.where(SystemAlert.code == code)
    return list(session.scalars(stmt))
