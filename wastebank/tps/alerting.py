"""TPS alerts in the ledger (``tps_alert``): ``fill_high`` raised and cleared by hysteresis,
``sensor_offline`` raised after a silence and cleared by the next reading, each transition once
(a partial unique index), and the transitions whose MQTT publish did not complete."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from wastebank import ledger
from wastebank.messages import FillReading, TpsAlert
from wastebank.structs import checked
from wastebank.tps.analytics import PickupUpdate, fill_transition
from wastebank.tps.pickup_journal import forget_pickups, record_pickups
from wastebank.tps.readings import SeriesKey
from wastebank.tps.registry import city_tps, get_tps

log = logging.getLogger("wastebank.tps")

FILL_HIGH: Final = "fill_high"
SENSOR_OFFLINE: Final = "sensor_offline"
AlertCode = Literal["fill_high", "sensor_offline"]


def active_alerts(session: Session, tps_ids: Iterable[int] | None = None) -> list[ledger.TpsAlert]:
    q = select(ledger.TpsAlert).where(ledger.TpsAlert.cleared_at.is_(None))
    if tps_ids is not None:
        q = q.where(ledger.TpsAlert.tps_id.in_(list(tps_ids)))
    return list(
        session.scalars(q.options(joinedload(ledger.TpsAlert.tps)).order_by(ledger.TpsAlert.id))
    )


def alerts(
    session: Session, tps_ids: Iterable[int] | None, since: datetime
) -> list[ledger.TpsAlert]:
    """Active alerts and those raised or cleared since ``since``, newest first."""
    a = ledger.TpsAlert
    q = select(a).where(or_(a.cleared_at.is_(None), a.raised_at >= since, a.cleared_at >= since))
    if tps_ids is not None:
        q = q.where(a.tps_id.in_(list(tps_ids)))
    return list(session.scalars(q.options(joinedload(a.tps)).order_by(a.raised_at.desc(), a.id)))


def alert_message(row: ledger.TpsAlert, state: Literal["raised", "cleared"]) -> TpsAlert:
    at = row.raised_at if state == "raised" else row.cleared_at
    assert at is not None
    return checked(
        TpsAlert(
            alert_id=row.id,
            tps_code=row.tps.code,
            sensor_id=row.sensor_id,
            code=FILL_HIGH if row.code == FILL_HIGH else SENSOR_OFFLINE,
            state=state,
            value=row.raised_value if state == "raised" else row.cleared_value,
            threshold=row.threshold,
            raised_at=row.raised_at,
            cleared_at=row.cleared_at,
            at=at,
            message=row.message,
        )
    )


def _latest_alert(session: Session, tps_id: int, sensor: str, code: str) -> ledger.TpsAlert | None:
    a = ledger.TpsAlert
    return session.scalar(
        select(a)
        .where(a.tps_id == tps_id, a.sensor_id == sensor, a.code == code)
        .order_by(a.id.desc())
        .limit(1)
    )


def _raise(
    session: Session,
    tps: ledger.Tps,
    sensor: str,
    code: str,
    at: datetime,
    value: float,
    threshold: float,
    message: str,
) -> ledger.TpsAlert | None:
    row = ledger.TpsAlert(
        tps_id=tps.id,
        sensor_id=sensor,
        code=code,
        raised_at=at,
        raised_value=value,
        threshold=threshold,
        message=message[:300],
    )
    row.tps = tps
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another watcher raised it first: it is raised, once
        return None
    return row


def apply_reading(
    session: Session, reading: FillReading, pickups: PickupUpdate | None = None
) -> list[TpsAlert]:
    """The alert transitions one reading causes: ``fill_high`` by hysteresis, and the clearing
    of ``sensor_offline``; and its ``pickups`` update; committed together. A reading of an
    unknown TPS changes nothing."""
    tps = get_tps(session, reading.tps_code)
    if tps is None or not tps.active:
        return []
    if pickups is not None:
        if pickups.forget is not None:
            lo, hi = pickups.forget
            gone = forget_pickups(session, tps.id, reading.sensor_id, lo, hi)
            back = record_pickups(session, tps.id, reading.sensor_id, pickups.found)
            if gone > back:
                log.info(
                    "pengangkutan dibatalkan oleh bacaan terlambat / pickup undone by a late "
                    "reading at %s/%s: %d",
                    tps.code,
                    reading.sensor_id,
                    gone - back,
                )
        else:
            record_pickups(session, tps.id, reading.sensor_id, pickups.found)
    at = reading.measured_at.astimezone(UTC)
    level = float(reading.fillingLevel)
    out: list[tuple[ledger.TpsAlert, Literal["raised", "cleared"]]] = []
    latest = _latest_alert(session, tps.id, reading.sensor_id, FILL_HIGH)
    last_change = None if latest is None else (latest.cleared_at or latest.raised_at)
    if last_change is None or at > last_change:
        active = latest is not None and latest.cleared_at is None
        step = fill_transition(active, level, tps.alert_raise_fill, tps.alert_clear_fill)
        if step == "raise":
            row = _raise(
                session,
                tps,
                reading.sensor_id,
                FILL_HIGH,
                at,
                level,
                tps.alert_raise_fill,
                f"kontainer hampir penuh / container nearly full: {level:.0%} "
                f"(≥ {tps.alert_raise_fill:.0%}) at {tps.code}/{reading.sensor_id}",
            )
            if row is not None:
                out.append((row, "raised"))
        elif step == "clear" and latest is not None:
            latest.cleared_at = at
            latest.cleared_value = level
            out.append((latest, "cleared"))
    offline = _latest_alert(session, tps.id, reading.sensor_id, SENSOR_OFFLINE)
    fresh = datetime.now(UTC) - at <= timedelta(minutes=tps.offline_after_min)
    if offline is not None and offline.cleared_at is None and fresh:
        offline.cleared_at = max(at, offline.raised_at)
        offline.cleared_value = 0.0
        out.append((offline, "cleared"))
    session.flush()  # ids for the messages; the caller commits
    return [alert_message(row, state) for row, state in out]


def apply_offline(
    session: Session, seen: dict[SeriesKey, datetime], now: datetime
) -> list[TpsAlert]:
    """Raise ``sensor_offline`` for every sensor of a registered TPS not heard from for its
    ``offline_after_min``; committed."""
    registry = {t.code: t for t in city_tps(session)}
    out: list[TpsAlert] = []
    for (code, sensor), last in sorted(seen.items()):
        tps = registry.get(code)
        if tps is None:
            continue
        quiet = now - last
        if quiet <= timedelta(minutes=tps.offline_after_min):
            continue
        latest = _latest_alert(session, tps.id, sensor, SENSOR_OFFLINE)
        if latest is not None and (latest.cleared_at is None or latest.raised_at > last):
            continue  # raised already for this silence (since ``last``)
        minutes = quiet / timedelta(minutes=1)
        row = _raise(
            session,
            tps,
            sensor,
            SENSOR_OFFLINE,
            now,
            round(minutes, 1),
            float(tps.offline_after_min),
            f"sensor tidak mengirim / sensor silent for {minutes:.0f} min "
            f"(> {tps.offline_after_min}) at {code}/{sensor}",
        )
        if row is not None:
            out.append(alert_message(row, "raised"))
    session.flush()
    return out


def unpublished(session: Session) -> list[tuple[TpsAlert, int]]:
    """Transitions whose MQTT publish did not complete, oldest first: (message, row id)."""
    a = ledger.TpsAlert
    rows = session.scalars(
        select(a)
        .where(
            or_(
                a.raised_published.is_(False),
                a.cleared_at.is_not(None) & a.cleared_published.is_(False),
            )
        )
        .options(joinedload(a.tps))
        .order_by(a.id)
    )
    out: list[tuple[TpsAlert, int]] = []
    for row in rows:
        if not row.raised_published:
            out.append((alert_message(row, "raised"), row.id))
        if row.cleared_at is not None and not row.cleared_published:
            out.append((alert_message(row, "cleared"), row.id))
    return out


def mark_published(session: Session, alert_id: int, state: Literal["raised", "cleared"]) -> None:
    row = session.get(ledger.TpsAlert, alert_id)
    if row is not None:
        if state == "raised":
            row.raised_published = True
        else:
            row.cleared_published = True
        session.flush()
