"""DLH reports (wastebank/reports/): diverted tonnage, the reduction share against the
Jakstrada target, the monthly report as a download. DLH staff see their own city; an admin any
city (``city=``, default: the first).

  GET /api/dlh/tonnage?group=&period=&from=&to=
  GET /api/dlh/reduction?year=
  GET /api/dlh/diversion?from=&to=        diverted / (diverted + TPA-bound from TPS pickups), with
                                          its coverage; no rate below [reports.diversion_coverage]
  GET /api/dlh/report/monthly?month=2026-10&format=xlsx|csv|pdf&csv_dialect=id|plain
                            &orientation=landscape|portrait
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Literal, TypeVar
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, State, StateDep, forbidden, refusals
from wastebank import access, reports, tps
from wastebank.influx import InfluxError

T = TypeVar("T")

router = APIRouter(prefix="/api/dlh", tags=["dlh"])

CityQuery = Annotated[
    str | None, Query(description="city code (admins; DLH staff always get their own city)")
]
MonthQuery = Annotated[
    str,
    Query(
        description="YYYY-MM, 2000-01..2100-12; a bad one is a 422 saying what is wrong (the "
        "shape, the year or the month: reports.parse_month)",
        examples=["2026-10"],
    ),
]
CsvDialectQuery = Annotated[
    Literal["id", "plain"],
    Query(
        description="CSV: id = ';' and comma decimals (Excel in Indonesian), plain = ',' and "
        "dot decimals"
    ),
]


def scope_of(
    state: State, session: Session, p: access.Principal, city: str | None
) -> reports.Scope:
    if p.role == access.Role.DLH:
        if p.city_id is None:
            raise forbidden("akun DLH tanpa kota / a DLH login without a city")
        scope = reports.load_scope(session, city_id=p.city_id)
        if city is not None and city != scope.city_code:
            raise forbidden("kota lain / another city")
        return scope
    if p.role == access.Role.ADMIN:
        return reports.load_scope(session, city_code=city)
    raise forbidden("untuk DLH dan admin / for DLH staff and admins")


def read_in_city(
    state: State,
    p: access.Principal,
    city: str | None,
    work: Callable[[Session, reports.Scope], T],
) -> T:
    """``work`` on a read session in the caller's city; its ValueError is a 422."""
    with Session(state["engine"]) as session:
        scope = scope_of(state, session, p, city)
        try:
            return work(session, scope)
        except ValueError as exc:
            raise HTTPException(422, f"tidak sah / invalid: {exc}") from None


@router.get("/tonnage", responses=refusals(401, 403, 404, 422))
async def tonnage(
    state: StateDep,
    p: PrincipalDep,
    group: Literal["kecamatan", "kelurahan", "bank", "category", "sipsn_class", "city"] = (
        "kecamatan"
    ),
    period: Literal["day", "week", "month", "year", "total"] = "month",
    date_from: Annotated[
        date | None, Query(alias="from", description="first local day (default: 1st of month)")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="last local day, included (default: today)")
    ] = None,
    city: CityQuery = None,
) -> reports.Tonnage:
    """Diverted from the TPA (pengurangan), voids left out, measured and estimated apart, in
    the city's own days."""

    def work(session: Session, scope: reports.Scope) -> reports.Tonnage:
        today = datetime.now(scope.tz).date()
        end = date_to or today
        start = date_from or end.replace(day=1)
        if (end - start) > timedelta(days=3660):
            raise ValueError("at most ten years at once")
        return reports.tonnage(session, scope, start, end, group, period)

    return await anyio.to_thread.run_sync(read_in_city, state, p, city, work)


@router.get("/reduction", responses=refusals(401, 403, 404, 409, 422))
async def reduction(
    state: StateDep,
    p: PrincipalDep,
    year: Annotated[int, Query(ge=2000, le=2100)],
    city: CityQuery = None,
) -> reports.Reduction:
    """The year's pengurangan: the waste banks' tonnage as a share of the city's estimated
    generation (population x rate, from its city data file with their sources, docs/dlh.md),
    the figure the Jakstrada reduction target applies to; 409 without that file."""
    settings = state["settings"].reports

    def work(session: Session, scope: reports.Scope) -> reports.Reduction:
        try:
            return reports.reduction(session, scope, year, settings)
        except reports.NoGenerationEstimate as exc:
            raise HTTPException(409, f"estimasi timbulan belum diatur / {exc}") from None

    return await anyio.to_thread.run_sync(read_in_city, state, p, city, work)


FIRST_DAY, LAST_DAY = reports.FIRST_DAY, reports.LAST_DAY  # the days a report may cover


class Diversion(BaseModel):
    """The diversion rate of a city over local days ``start``..``end``: what its waste banks
    took in (the ledger: measured by scale, or estimated) against what its TPS sent to the TPA
    (estimated: each pickup detected from the fill sensors x container volume x bulk density).

    Not the Jakstrada pengurangan (that is /reduction: the banks' tonnage over the city's
    estimated generation, the share the 30 % target applies to): this one divides by what the
    sensor-equipped TPS sent, so it is the city's only when they cover enough of the city's TPS
    (``coverage``, [reports.diversion_coverage]); below that ``rate`` is None and
    ``rate_of_covered_tps`` keeps the ratio against the covered TPS alone (None when none
    reported or they sent nothing to the TPA)."""

    city_code: str
    timezone: str
    start: date
    end: date
    diverted_t: float
    diverted_measured_t: float
    tpa_bound_t: float
    pickups: int
    rate: float | None = Field(
        description="diverted / (diverted + TPA-bound) as the city's; None when coverage is not "
        "enough (coverage.reason) or nothing was seen going to the TPA (tpa_bound_t 0)"
    )
    rate_of_covered_tps: float | None = Field(
        description="diverted_t / (diverted_t + tpa_bound_t) whatever the coverage: every bank "
        "of the city against the TPA-bound of the TPS whose sensors reported only; None when no "
        "TPS reported or they sent nothing to the TPA (tpa_bound_t 0: no pickup observed)"
    )
    coverage: reports.Coverage
    tps_without_sensor_data: list[str]
    diverted_basis: str = "ledger: deposits measured by scale, and estimated (manual entries)"
    tpa_bound_basis: Literal["estimated"] = "estimated"
    tpa_bound_method: str = tps.TPA_METHOD


async def diversion_of(
    state: State,
    p: access.Principal,
    city: str | None,
    days: Callable[[reports.Scope], tuple[date, date]],
) -> Diversion:
    """:class:`Diversion` for the caller's city over the local days ``days(scope)`` (which may
    refuse them: HTTPException): the ledger's half in a worker thread, InfluxDB's on the event
    loop. InfluxError when the readings cannot be read."""

    settings = state["settings"].reports

    def ledger_half(
        session: Session, scope: reports.Scope
    ) -> tuple[reports.Scope, date, date, reports.Tonnage, tps.TpaJournal, tuple[int, str] | None]:
        start, end = days(scope)
        lo = datetime.combine(start, datetime.min.time(), scope.tz)
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), scope.tz)
        diverted = reports.tonnage(session, scope, start, end, "city", "total")
        journal = tps.tpa_journal(session, scope.city_code, lo, hi)
        # the city's data file is read here, off the event loop (tests/test_api_capacity.py)
        in_city = reports.tps_in_city(scope.city_code, settings)
        return scope, start, end, diverted, journal, in_city

    scope, start, end, diverted, journal, in_city = await anyio.to_thread.run_sync(
        read_in_city, state, p, city, ledger_half
    )
    tpa = await tps.tpa_estimate(state["influx"], journal)
    diverted_t = diverted.total_g / 1_000_000
    coverage = reports.diversion_coverage(
        tps_with_sensors=len(journal.per_tps_tonnes),
        tps_reporting=len(journal.per_tps_tonnes) - len(tpa.tps_without_sensor_data),
        tps_in_city=None if in_city is None else in_city[0],
        tps_in_city_source=None if in_city is None else in_city[1],
        pickups=tpa.pickups,
        rule=settings.diversion_coverage,
    )
    rate = tps.diversion_rate(diverted_t, tpa.tonnes)  # None: nothing seen going to the TPA
    return Diversion(
        city_code=scope.city_code,
        timezone=scope.timezone,
        start=start,
        end=end,
        diverted_t=diverted_t,
        diverted_measured_t=diverted.measured_g / 1_000_000,
        tpa_bound_t=tpa.tonnes,
        pickups=tpa.pickups,
        rate=rate if coverage.enough else None,
        rate_of_covered_tps=rate,
        coverage=coverage,
        tps_without_sensor_data=tpa.tps_without_sensor_data,
    )


@router.get("/diversion", responses=refusals(401, 403, 404, 422, 503))
async def diversion(
    state: StateDep,
    p: PrincipalDep,
    date_from: Annotated[
        date | None, Query(alias="from", description="first local day (default: 1st of month)")
    ] = None,
    date_to: Annotated[
        date | None, Query(alias="to", description="last local day, included (default: today)")
    ] = None,
    city: CityQuery = None,
) -> Diversion:
    """Diverted / (diverted + TPA-bound) over local days (at most a year): the waste banks'
    tonnage from the ledger against the TPS pickups' estimated mass."""

    def days(scope: reports.Scope) -> tuple[date, date]:
        end = date_to or datetime.now(scope.tz).date()
        start = date_from or end.replace(day=1)
        if start > end or (end - start) > timedelta(days=366):
            raise HTTPException(422, "tidak sah / invalid: from..to, at most a year")
        if start < FIRST_DAY or end > LAST_DAY:
            raise HTTPException(422, f"tidak sah / invalid: days from {FIRST_DAY} to {LAST_DAY}")
        return start, end

    try:
        return await diversion_of(state, p, city, days)
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB: {exc}") from None


@router.get(
    "/report/monthly",
    response_class=Response,
    responses={
        200: {
            "description": "the report file",
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in (
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "text/csv",
                    "application/pdf",
                )
            },
        },
        **refusals(401, 403, 404, 422),
    },
)
async def monthly(
    state: StateDep,
    p: PrincipalDep,
    month: MonthQuery,
    fmt: Annotated[Literal["xlsx", "csv", "pdf"], Query(alias="format")] = "xlsx",
    city: CityQuery = None,
    csv_dialect: CsvDialectQuery = "id",
    orientation: Annotated[
        Literal["landscape", "portrait"], Query(description="PDF: A4 landscape or portrait")
    ] = "landscape",
) -> Response:
    """The monthly DLH report per kecamatan x category, as a download (docs/reports.md)."""
    settings = state["settings"].reports

    def work(session: Session, scope: reports.Scope) -> tuple[bytes, str]:
        report = reports.monthly_report(
            session, scope, month, settings, estimator=reports.default_estimator()
        )
        body = reports.render(report, fmt, csv_dialect=csv_dialect, orientation=orientation)
        return body, reports.filename(report, fmt)

    body, name = await anyio.to_thread.run_sync(read_in_city, state, p, city, work)
    return attachment(body, name, reports.MEDIA_TYPES[fmt])


def attachment(body: bytes, name: str, media_type: str) -> Response:
    """A report as a download named ``name`` (UTF-8), kept by no shared cache."""
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            "Cache-Control": "private, no-store",
        },
    )
