"""The pickup journal (ledger ``tps_pickup``): each detected pickup's facts (TPS, sensor, time,
fill before and after), inserted once (ON CONFLICT DO NOTHING), summed per TPS at the density it
has now, and rebuilt from the readings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, select
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.influx import Influx
from wastebank.tps.analytics import Pickup, detect_pickups
from wastebank.tps.readings import PICKUP_MARGIN, fill_readings
from wastebank.tps.registry import city_tps, get_tps

_PICKUP = cast(Table, ledger.TpsPickup.__table__)
_INSERTS: dict[str, Callable[[Table], sqlite_dml.Insert | postgresql_dml.Insert]] = {
    "sqlite": sqlite_dml.insert,
    "postgresql": postgresql_dml.insert,
}


def record_pickups(
    session: Session,
    tps_id: int,
    sensor: str,
    found: Iterable[Pickup],
    *,
    now: datetime | None = None,
) -> int:
    """Insert ``found`` into the journal, each unless it is there already (ON CONFLICT (TPS,
    sensor, at) DO NOTHING); returns how many were new. Does not commit."""
    make = _INSERTS[session.get_bind().dialect.name]
    stamp = now or datetime.now(UTC)
    new = 0
    for p in found:
        stmt = (
            make(_PICKUP)
            .values(
                tps_id=tps_id,
                sensor_id=sensor,
                at=p.at,
                fill_before=p.fill_before,
                fill_after=p.fill_after,
                detected_at=stamp,
            )
            .on_conflict_do_nothing(
                index_elements=[_PICKUP.c.tps_id, _PICKUP.c.sensor_id, _PICKUP.c.at]
            )
            .returning(_PICKUP.c.id)
        )
        new += len(session.execute(stmt).all())
    return new


def forget_pickups(
    session: Session, tps_id: int, sensor: str, start: datetime, end: datetime
) -> int:
    """Delete the sensor's pickups in ``[start, end]``; does not commit."""
    p = ledger.TpsPickup
    q = delete(p).where(p.tps_id == tps_id, p.sensor_id == sensor, p.at >= start, p.at <= end)
    return max(cast(CursorResult[Any], session.execute(q)).rowcount, 0)


def journal(
    session: Session, tps: Sequence[ledger.Tps], start: datetime, end: datetime
) -> list[ledger.TpsPickup]:
    """The journal's pickups at these TPS in ``[start, end)``, by time."""
    p = ledger.TpsPickup
    ids = [t.id for t in tps]
    if not ids:
        return []
    q = select(p).where(p.tps_id.in_(ids), p.at >= start, p.at < end)
    return list(session.scalars(q.order_by(p.at, p.tps_id, p.sensor_id)))


@dataclass(frozen=True)
class JournalTotal:
    """One TPS's pickups in a period from the journal, with their mass at today's density."""

    tps: ledger.Tps
    pickups: int
    mass_kg: float


def journal_totals(
    session: Session, tps: Sequence[ledger.Tps], start: datetime, end: datetime
) -> dict[str, JournalTotal]:
    """Per TPS code (only those with a pickup in ``[start, end)``): the count and Σ volume x
    fill before (clamped to 0..1, as :func:`pickup_mass_kg`) x density, the volume and density
    the TPS has now. One grouped query on the index (tps_id, at)."""
    p = ledger.TpsPickup
    by_id = {t.id: t for t in tps}
    if not by_id:
        return {}
    fill = case((p.fill_before > 1.0, 1.0), (p.fill_before < 0.0, 0.0), else_=p.fill_before)
    rows = session.execute(
        select(p.tps_id, func.count(), func.sum(fill))
        .where(p.tps_id.in_(list(by_id)), p.at >= start, p.at < end)
        .group_by(p.tps_id)
    )
    out: dict[str, JournalTotal] = {}
    for tps_id, n, fills in rows:
        t = by_id[tps_id]
        mass = t.container_volume_m3 * float(fills or 0.0) * t.density_kg_m3
        out[t.code] = JournalTotal(tps=t, pickups=int(n), mass_kg=mass)
    return out


@dataclass(frozen=True)
class RebuildSummary:
    tps: int
    sensors: int
    readings: int
    removed: int
    inserted: int


REBUILD_CHUNK = 10  # TPS whose readings are read at once (a year of 2 sensors: ~70,000 points)


async def rebuild_pickups(
    session: Session,
    influx: Influx,
    start: datetime,
    end: datetime,
    tps_codes: Iterable[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> RebuildSummary:
    """Run :func:`detect_pickups` over the readings of ``[start, end)`` (with ``PICKUP_MARGIN``
    either side, as :func:`wastebank.tps.pickups`) of these TPS (None: every active TPS) and
    replace the journal's rows of the range with what it finds, in one transaction,
    which the caller commits."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must carry a time zone")
    tps = _rebuild_tps(session, tps_codes)
    ids_by_code = {t.code: t.id for t in tps}
    session.rollback()  # no transaction (nor SQLite's write lock) held while InfluxDB is read
    found = await _detected(influx, ids_by_code, start, end, progress)
    # One short write transaction. A watcher recording the same pickup meanwhile is harmless
    # (ON CONFLICT DO NOTHING: the row is there once).
    removed = _replace(session, sorted(ids_by_code.values()), found.rows, start, end)
    session.flush()
    return RebuildSummary(
        tps=len(tps),
        sensors=found.sensors,
        readings=found.readings,
        removed=removed,
        inserted=len(found.rows),
    )


def _rebuild_tps(session: Session, tps_codes: Iterable[str] | None) -> list[ledger.Tps]:
    """The TPS of ``tps_codes`` (None: every active TPS); ledger.NotFound for an unknown one."""
    if tps_codes is None:
        return city_tps(session)
    tps = []
    for code in tps_codes:
        t = get_tps(session, code)
        if t is None:
            raise ledger.NotFound(f"TPS {code}")
        tps.append(t)
    return tps


@dataclass
class _Detected:
    rows: list[dict[str, Any]]  # journal rows, as inserted
    sensors: int = 0
    readings: int = 0


async def _detected(
    influx: Influx,
    ids_by_code: dict[str, int],
    start: datetime,
    end: datetime,
    progress: Callable[[int, int], None] | None,
) -> _Detected:
    """The pickups in ``[start, end)`` the rule finds in the readings of these TPS, as journal
    rows; ``REBUILD_CHUNK`` TPS a query."""
    out = _Detected(rows=[])
    now = datetime.now(UTC)
    codes = sorted(ids_by_code)
    for k in range(0, len(codes), REBUILD_CHUNK):
        chunk = codes[k : k + REBUILD_CHUNK]
        series = await fill_readings(influx, chunk, start - PICKUP_MARGIN, end + PICKUP_MARGIN)
        for (code, sensor), rs in sorted(series.items()):
            tps_id = ids_by_code.get(code)
            if tps_id is None:
                continue
            out.sensors += 1
            out.readings += len(rs)
            out.rows.extend(
                {
                    "tps_id": tps_id,
                    "sensor_id": sensor,
                    "at": p.at,
                    "fill_before": p.fill_before,
                    "fill_after": p.fill_after,
                    "detected_at": now,
                }
                for p in detect_pickups(rs)
                if start <= p.at < end
            )
        if progress is not None:
            progress(min(len(codes), k + REBUILD_CHUNK), len(codes))
    return out


def _replace(
    session: Session, ids: list[int], rows: list[dict[str, Any]], start: datetime, end: datetime
) -> int:
    """Delete the journal's rows of these TPS in ``[start, end)`` and insert ``rows`` (not
    committed); how many were deleted."""
    p = ledger.TpsPickup
    removed = 0
    for k in range(0, len(ids), 500):
        q = delete(p).where(p.tps_id.in_(ids[k : k + 500]), p.at >= start, p.at < end)
        removed += max(cast(CursorResult[Any], session.execute(q)).rowcount, 0)
    make = _INSERTS[session.get_bind().dialect.name]
    stmt = make(_PICKUP).on_conflict_do_nothing(
        index_elements=[_PICKUP.c.tps_id, _PICKUP.c.sensor_id, _PICKUP.c.at]
    )
    for k in range(0, len(rows), 10_000):
        session.execute(stmt, rows[k : k + 10_000])
    return removed
