"""Routes read straight from InfluxDB's measurements, for DLH staff and admins.

  GET /api/tonnage?start=&end=&group_by=&interval=   diverted grams by local day (DLH: their
                                                     city's banks)
  GET /api/tps/latest                                the latest fill reading per TPS sensor

(The ledger's tonnage, with voids and estimates: api/dlh.py; the TPS analytics: api/tps.py.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, State, StateDep, forbidden, refusals
from wastebank import access, ledger
from wastebank.influx import DEPOSIT, FILL, Influx, InfluxError, influxql_time

router = APIRouter(tags=["dlh"])

# InfluxDB's times are int64 nanoseconds since 1970 (1677-09-21 to 2262-04-11): whole local days
# safely inside; a query beyond them is refused by InfluxDB (and past 9999 by Python).
INFLUX_FIRST_DAY = date(1678, 1, 1)
INFLUX_LAST_DAY = date(2261, 12, 31)


class TonnageGroup(BaseModel):
    key: dict[str, str]
    period_start: datetime | None = None
    net_g: int
    deposits: int


class Tonnage(BaseModel):
    timezone: str
    start: datetime
    end: datetime
    group_by: str
    interval: str
    basis: Literal["measured"] = "measured"
    total_g: int
    groups: list[TonnageGroup]


class TpsLatest(BaseModel):
    tps_code: str
    sensor_id: str
    measured_at: datetime
    filling_level: float
    distance_mm: int | None = None
    battery_pct: int | None = None


def _city_staff(p: access.Principal) -> None:
    if p.role not in (access.Role.DLH, access.Role.ADMIN):
        raise forbidden("untuk DLH dan admin / for DLH staff and admins")


@router.get("/api/tonnage", responses=refusals(401, 403, 422, 503))
async def tonnage(
    state: StateDep,
    p: PrincipalDep,
    start: Annotated[date, Query(description="first local day, e.g. 2026-11-01")],
    end: Annotated[date, Query(description="last local day (inclusive)")],
    group_by: Literal["category", "bank", "kecamatan"] = "category",
    interval: Literal["total", "day"] = "total",
) -> Tonnage:
    """Diverted grams by local day; a DLH user sees their city's banks only."""
    _city_staff(p)
    if end < start:
        raise HTTPException(422, "end must not be before start / tanggal akhir sebelum awal")
    if start < INFLUX_FIRST_DAY or end > INFLUX_LAST_DAY:
        raise HTTPException(
            422,
            f"tanggal di luar {INFLUX_FIRST_DAY}..{INFLUX_LAST_DAY} / days outside the range "
            "InfluxDB keeps",
        )
    tz_name, banks = await anyio.to_thread.run_sync(_city_scope, state, p)
    return await _tonnage(state["influx"], tz_name, start, end, group_by, interval, banks)


@router.get("/api/tps/latest", responses=refusals(401, 403, 503))
async def tps_latest(state: StateDep, p: PrincipalDep) -> list[TpsLatest]:
    _city_staff(p)
    series = await _query_or_503(
        state["influx"],
        f'SELECT * FROM "{FILL}" GROUP BY "tps", "sensor" ORDER BY time DESC LIMIT 1',  # noqa: S608
    )
    out = []
    for s in series:
        for row in s.rows():
            out.append(
                TpsLatest(
                    tps_code=s.tags["tps"],
                    sensor_id=s.tags["sensor"],
                    measured_at=datetime.fromtimestamp(row["time"] / 1000, UTC),
                    filling_level=row["filling_level"],
                    distance_mm=row.get("distance_mm"),
                    battery_pct=row.get("battery_pct"),
                )
            )
    return sorted(out, key=lambda t: (t.tps_code, t.sensor_id))


def _city_scope(state: State, p: access.Principal) -> tuple[str, list[str] | None]:
    """The time zone to bucket days in, and the banks whose tonnage ``p`` sees (None: all):
    a DLH user's city and its banks; for an admin the first city's zone and every bank."""
    with Session(state["engine"]) as session:
        if p.role == access.Role.DLH and p.city_id is not None:
            city = session.get(ledger.City, p.city_id)
            codes = session.scalars(
                select(ledger.Bank.code).where(ledger.Bank.city_id == p.city_id)
            )
            return (city.timezone if city else state["settings"].default_timezone), list(codes)
        first = ledger.first_city(session)
    return (first.timezone if first else state["settings"].default_timezone), None


def _influx_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_day_bounds(start: date, end: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the city's zone, as aware datetimes."""
    tz = ZoneInfo(tz_name)
    return (
        datetime.combine(start, time(0), tz),
        datetime.combine(end + timedelta(days=1), time(0), tz),
    )


def _tonnage_query(
    lo: datetime, hi: datetime, tz_name: str, group_by: str, interval: str, banks: list[str] | None
) -> str:
    """The InfluxQL of :func:`_tonnage`. Built only from constants, Literal-checked tag names,
    RFC3339 times, a zone name that ZoneInfo accepted and the ledger's bank codes as quoted and
    escaped InfluxQL strings: nothing from the request reaches it as text."""
    where = f"time >= {influxql_time(lo)} AND time < {influxql_time(hi)}"
    if banks is not None:
        where += " AND (" + " OR ".join(f'"bank" = {_influx_string(b)}' for b in banks) + ")"
    group = f'"{group_by}"'
    if interval == "day":
        group = f"time(1d), {group} fill(none) tz('{tz_name}')"
    select_ = f'SELECT sum("net_g") AS net_g, count("net_g") AS deposits FROM "{DEPOSIT}"'  # noqa: S608
    return f"{select_} WHERE {where} GROUP BY {group}"  # noqa: S608


async def _tonnage(
    influx: Influx,
    tz_name: str,
    start: date,
    end: date,
    group_by: str,
    interval: str,
    banks: list[str] | None = None,
) -> Tonnage:
    """``banks``: only these banks' deposits (None: all of them; empty: none, InfluxDB is not
    asked)."""
    lo, hi = local_day_bounds(start, end, tz_name)
    series: list[Any] = []
    if banks is None or banks:
        series = await _query_or_503(
            influx, _tonnage_query(lo, hi, tz_name, group_by, interval, banks)
        )
    zone = ZoneInfo(tz_name)
    groups = [
        TonnageGroup(
            key=dict(s.tags),
            period_start=datetime.fromtimestamp(row["time"] / 1000, zone)
            if interval == "day"
            else None,
            net_g=int(row["net_g"]),
            deposits=int(row["deposits"]),
        )
        for s in series
        for row in s.rows()
        if row.get("net_g") is not None
    ]
    groups.sort(key=lambda g: (g.period_start or lo, sorted(g.key.items())))
    return Tonnage(
        timezone=tz_name,
        start=lo,
        end=hi,
        group_by=group_by,
        interval=interval,
        total_g=sum(g.net_g for g in groups),
        groups=groups,
    )


async def _query_or_503(influx: Influx, q: str) -> list[Any]:
    try:
        return await influx.query(q)
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB: {exc}") from None
