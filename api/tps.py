"""TPS (waste collection points) for DLH staff and admins: fill, fill rate, time to full, pickups
and their estimated masses, alerts (wastebank/tps/).

GET /api/tps                    the TPS of the caller's city (admin: every city), each with its
                                containers' latest fill, fill rate, predicted full time with a
                                confidence interval and reliability, last emptied, offline flag,
                                and its active alerts
GET /api/tps/alerts?days=7      active alerts and those raised or cleared in the last ``days``
GET /api/tps/{code}?start=&end= one TPS: the above plus its pickups in [start, end] (local days,
                                default the last 7) with their masses, and totals per local day

(``GET /api/tps/latest``, the latest raw reading per sensor: api/measured.py.)
Every timestamp is aware (UTC); ``timezone`` names the city's zone, which the local days use.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, State, StateDep, forbidden, not_found, refusals
from wastebank import access, ledger, reports, tps
from wastebank.influx import Influx, InfluxError

router = APIRouter(tags=["dlh"])


class FullPrediction(BaseModel):
    full_at: datetime
    earliest: datetime
    latest: datetime | None
    hours: float
    reliability: Literal["high", "medium", "low"]


class Container(BaseModel):
    sensor_id: str
    measured_at: datetime
    fill: float
    offline: bool
    last_emptied: datetime | None
    fill_rate_per_hour: float | None
    fill_rate_stderr: float | None
    fill_rate_points: int
    predicted_full: FullPrediction | None


class AlertOut(BaseModel):
    id: int
    tps_code: str
    sensor_id: str
    code: str
    state: Literal["raised", "cleared"]
    raised_at: datetime
    raised_value: float | None
    threshold: float | None
    cleared_at: datetime | None
    cleared_value: float | None
    message: str


class TpsOut(BaseModel):
    code: str
    name: str
    city: str
    timezone: str
    kecamatan: str | None
    kelurahan: str | None
    lat: float | None
    lon: float | None
    container_volume_m3: float
    container_count: int
    density_kg_m3: float
    density_source: str
    density_calibrated_at: datetime | None
    alert_raise_fill: float
    alert_clear_fill: float
    offline_after_min: int
    fill: float | None  # the fullest container's
    offline: bool  # every container offline, or none ever heard
    containers: list[Container]
    active_alerts: list[AlertOut]


class PickupOut(BaseModel):
    sensor_id: str
    at: datetime
    local_day: date
    fill_before: float
    fill_after: float
    volume_m3: float
    density_kg_m3: float
    mass_kg: float


class DayOut(BaseModel):
    day: date
    pickups: int
    mass_kg: float


class TpsDetail(TpsOut):
    start: datetime
    end: datetime
    basis: Literal["estimated"] = "estimated"
    method: str = tps.TPA_METHOD
    pickups: list[PickupOut]
    by_day: list[DayOut]
    total_mass_kg: float


# ---- helpers ----------------------------------------------------------------------------------


def _city_staff(p: access.Principal) -> None:
    if p.role not in (access.Role.DLH, access.Role.ADMIN):
        raise forbidden("untuk DLH dan admin / for DLH staff and admins")


def _scope(p: access.Principal) -> int | None:
    """The city whose TPS ``p`` sees (None: every city, an admin)."""
    if p.role == access.Role.DLH:
        return p.city_id if p.city_id is not None else -1
    return None


def _alert_out(row: ledger.TpsAlert) -> AlertOut:
    return AlertOut(
        id=row.id,
        tps_code=row.tps.code,
        sensor_id=row.sensor_id,
        code=row.code,
        state="raised" if row.cleared_at is None else "cleared",
        raised_at=row.raised_at,
        raised_value=row.raised_value,
        threshold=row.threshold,
        cleared_at=row.cleared_at,
        cleared_value=row.cleared_value,
        message=row.message,
    )


def _container(c: tps.ContainerStatus) -> Container:
    pred = c.prediction
    return Container(
        sensor_id=c.sensor_id,
        measured_at=c.measured_at,
        fill=c.fill,
        offline=c.offline,
        last_emptied=c.last_emptied,
        fill_rate_per_hour=c.rate.per_hour if c.rate else None,
        fill_rate_stderr=c.rate.stderr_per_hour if c.rate else None,
        fill_rate_points=c.rate.points if c.rate else 0,
        predicted_full=FullPrediction(
            full_at=pred.full_at,
            earliest=pred.earliest,
            latest=pred.latest,
            hours=pred.hours,
            reliability=pred.reliability,
        )
        if pred
        else None,
    )


def _tps_out(
    t: ledger.Tps, containers: list[tps.ContainerStatus], alerts: list[ledger.TpsAlert]
) -> dict[str, object]:
    kel = t.kelurahan
    return {
        "code": t.code,
        "name": t.name,
        "city": t.city.code,
        "timezone": t.city.timezone,
        "kecamatan": kel.kecamatan.name if kel else None,
        "kelurahan": kel.name if kel else None,
        "lat": t.lat,
        "lon": t.lon,
        "container_volume_m3": t.container_volume_m3,
        "container_count": t.container_count,
        "density_kg_m3": t.density_kg_m3,
        "density_source": t.density_source,
        "density_calibrated_at": t.density_calibrated_at,
        "alert_raise_fill": t.alert_raise_fill,
        "alert_clear_fill": t.alert_clear_fill,
        "offline_after_min": t.offline_after_min,
        "fill": max((c.fill for c in containers), default=None),
        "offline": all(c.offline for c in containers),
        "containers": [_container(c) for c in containers],
        "active_alerts": [_alert_out(a) for a in alerts if a.tps_id == t.id],
    }


def _registry(state: State, p: access.Principal, code: str | None = None) -> list[ledger.Tps]:
    """The TPS ``p`` sees (with city and kelurahan loaded), or the one named ``code``."""
    with Session(state["engine"], expire_on_commit=False) as session:
        if code is None:
            rows = tps.city_tps(session, _scope(p))
        else:
            row = tps.get_tps(session, code)
            scope = _scope(p)
            rows = [] if row is None or (scope is not None and row.city_id != scope) else [row]
        for r in rows:
            if r.kelurahan is not None:
                _ = r.kelurahan.kecamatan.name  # loaded before the session closes
        session.expunge_all()
        return rows


def _active(state: State, ids: list[int]) -> list[ledger.TpsAlert]:
    with Session(state["engine"], expire_on_commit=False) as session:
        rows = tps.active_alerts(session, ids)
        session.expunge_all()
        return rows


async def _statuses(influx: Influx, rows: list[ledger.Tps]) -> dict[str, list[tps.ContainerStatus]]:
    try:
        return await tps.statuses(influx, rows)
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB: {exc}") from None


# ---- routes -----------------------------------------------------------------------------------


async def tps_overview(state: State, p: access.Principal) -> list[TpsOut]:
    """Every TPS ``p`` sees, with its containers' state and active alerts (GET /api/tps and
    the DLH dashboard); HTTPException 503 when InfluxDB is unreachable."""
    rows = await anyio.to_thread.run_sync(_registry, state, p)
    found = await _statuses(state["influx"], rows)
    active = await anyio.to_thread.run_sync(_active, state, [r.id for r in rows])
    return [TpsOut.model_validate(_tps_out(r, found.get(r.code, []), active)) for r in rows]


@router.get("/api/tps", responses=refusals(401, 403, 503))
async def tps_list(state: StateDep, p: PrincipalDep) -> list[TpsOut]:
    """Every TPS the caller sees, with its containers' state and active alerts."""
    _city_staff(p)
    return await tps_overview(state, p)


@router.get("/api/tps/alerts", responses=refusals(401, 403, 422))
async def tps_alerts(
    state: StateDep,
    p: PrincipalDep,
    days: Annotated[int, Query(ge=1, le=366, description="recent: raised or cleared since")] = 7,
) -> list[AlertOut]:
    """Active alerts, and those raised or cleared in the last ``days``, newest first."""
    _city_staff(p)

    def read() -> list[AlertOut]:
        with Session(state["engine"]) as session:
            scope = _scope(p)
            ids = None if scope is None else [t.id for t in tps.city_tps(session, scope)]
            since = datetime.now(UTC) - timedelta(days=days)
            return [_alert_out(a) for a in tps.alerts(session, ids, since)]

    return await anyio.to_thread.run_sync(read)


@router.get("/api/tps/{code}", responses=refusals(401, 403, 404, 422, 503))
async def tps_detail(
    state: StateDep,
    p: PrincipalDep,
    code: str,
    start: Annotated[
        date | None, Query(description="first local day (default: 6 days ago)")
    ] = None,
    end: Annotated[
        date | None, Query(description="last local day, inclusive (default: today)")
    ] = None,
) -> TpsDetail:
    """One TPS: its state, and its pickups in [start, end] (local days) with mass estimates."""
    _city_staff(p)
    rows = await anyio.to_thread.run_sync(_registry, state, p, code)
    if not rows:
        raise not_found("TPS", code)
    t = rows[0]
    zone = ZoneInfo(t.city.timezone)
    today = datetime.now(zone).date()
    if any(d is not None and not reports.FIRST_DAY <= d <= reports.LAST_DAY for d in (start, end)):
        raise HTTPException(
            422,
            f"tanggal di luar {reports.FIRST_DAY}..{reports.LAST_DAY} / days outside "
            f"{reports.FIRST_DAY}..{reports.LAST_DAY}",
        )
    last = end or today
    first = start or max(last - timedelta(days=6), reports.FIRST_DAY)
    if last < first:
        raise HTTPException(422, "end must not be before start / tanggal akhir sebelum awal")
    lo = datetime.combine(first, time(0), zone)
    hi = datetime.combine(last + timedelta(days=1), time(0), zone)
    found = await _statuses(state["influx"], rows)
    try:
        picked = await tps.pickups(state["influx"], rows, lo, hi)
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB: {exc}") from None
    active = await anyio.to_thread.run_sync(_active, state, [t.id])
    return TpsDetail.model_validate(
        {
            **_tps_out(t, found.get(t.code, []), active),
            "start": lo,
            "end": hi,
            "pickups": [
                PickupOut(
                    sensor_id=x.sensor_id,
                    at=x.at,
                    local_day=x.at.astimezone(zone).date(),
                    fill_before=x.fill_before,
                    fill_after=x.fill_after,
                    volume_m3=x.volume_m3,
                    density_kg_m3=x.density_kg_m3,
                    mass_kg=x.mass_kg,
                )
                for x in picked
            ],
            "by_day": [
                DayOut(day=d, pickups=n, mass_kg=kg)
                for d, n, kg in tps.local_days(picked, t.city.timezone)
            ],
            "total_mass_kg": sum(x.mass_kg for x in picked),
        }
    )
