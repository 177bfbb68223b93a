"""DLH reports: tonnage diverted from the TPA (SIPSN *pengurangan*), the city's waste generation
estimate and its reduction share against the Jakstrada target, and the monthly DLH report
(XLSX, CSV, PDF).

**Source: the ledger.** Tonnage is summed in SQL from the ledger's daily summary
(``deposit_day``: the grams and count of the non-voided deposits per city-local day, bank,
category and basis) and its monthly roll-up (``deposit_month``, the same per local month, read
for the whole months of a range), both written in the same transaction as every deposit, void
and correction and checked against the deposits by ``wastebank ledger verify``, not from
InfluxDB's ``deposit`` points, because only the ledger knows everything that counts:

* manual entries (scale down, piece/litre categories, corrections) are written by the API to the
  ledger only, never to InfluxDB;
* a voided deposit is not diverted: it is left out (``deposit_void``), whenever it was voided.
  A void made after a month was reported changes that month's figures when it is run again;
* the ledger is exact (integer grams), InfluxDB's points are for telemetry-style dashboards.

Every figure carries its basis: ``measured`` (weighed on a scale: ``deposit.manual`` false) or
``estimated`` (entered by hand: a weight guessed, counted pieces, litres x density). Generation,
CO2e and energy are estimates by nature and are labelled so.

**Time zone.** Days, weeks (ISO, Monday first), months and years are the city's own (WIB, WITA,
WIT): a deposit at 00:30 WIT on the 1st is in the new month. The ledger converts each deposit's
``measured_at`` to its city's local date (:mod:`zoneinfo`, exact for any zone) when it writes the
summary, and every period is a union of local days, so the reports are exact on PostgreSQL and
SQLite alike. A city whose zone is changed needs ``wastebank ledger rebuild-summary``
(``ledger.rebuild_deposit_days``).

Pure where it can be: :func:`tonnage` and :func:`monthly_report` read the ledger; the renderers
(:func:`monthly_csv`, :func:`monthly_xlsx`, :func:`monthly_pdf`) only format a report.
"""

from __future__ import annotations

import calendar
import csv
import io
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Date, DateTime, cast, func, select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.formats import (
    MONTH_NAMES_ID,
    kg,
    latin1,
    number,
    percent,
    tanggal,
    tanggal_waktu,
    zone_label,
)

Group = Literal["bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class"]
Period = Literal["day", "week", "month", "year", "total"]
Basis = Literal["measured", "estimated", "mixed", "none"]

GROUPS: tuple[str, ...] = ("bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class")
PERIODS: tuple[str, ...] = ("day", "week", "month", "year", "total")

DEMO_CITY_FILE = Path(__file__).parent / "data" / "demo_city.toml"

SIPSN_NAMES: dict[str, tuple[str, str]] = {
    ledger.SipsnClass.SISA_MAKANAN: ("Sisa makanan", "Food waste"),
    ledger.SipsnClass.KAYU_RANTING: ("Kayu, ranting, daun", "Wood, twigs, leaves"),
    ledger.SipsnClass.KERTAS_KARTON: ("Kertas, karton", "Paper, cardboard"),
    ledger.SipsnClass.PLASTIK: ("Plastik", "Plastic"),
    ledger.SipsnClass.LOGAM: ("Logam", "Metal"),
    ledger.SipsnClass.KAIN: ("Kain", "Textile"),
    ledger.SipsnClass.KARET_KULIT: ("Karet, kulit", "Rubber, leather"),
    ledger.SipsnClass.KACA: ("Kaca", "Glass"),
    ledger.SipsnClass.LAINNYA: ("Lainnya", "Other"),
}


# ---- settings and the generation estimate -------------------------------------------------------


class ReportSettings(BaseModel):
    """``[reports]`` (environment ``WASTEBANK_REPORTS__*``): the city's generation estimate and
    the targets. Unset population/rate: taken from ``generation_file`` (default: the demo city
    file's ``[generation]`` section, for the city whose code it names)."""

    population: int | None = Field(default=None, gt=0, description="the city's population")
    kg_per_capita_day: float | None = Field(
        default=None, gt=0, le=5, description="waste generation, kg per person per day"
    )
    source: str | None = Field(default=None, description="where the two figures come from")
    generation_file: Path | None = Field(
        default=None, description="TOML with [city] code and [generation] (demo_city.toml's shape)"
    )
    reduction_target_pct: float = Field(
        default=30.0, ge=0, le=100, description="Jakstrada pengurangan target (2025: 30 %)"
    )
    handling_target_pct: float = Field(
        default=70.0, ge=0, le=100, description="Jakstrada penanganan target (2025: 70 %)"
    )


class Generation(BaseModel):
    """Waste generation (timbulan) estimate: population x kg per person per day."""

    city_code: str
    population: int
    population_year: int | None = None
    kg_per_capita_day: float
    source: str
    basis: Literal["estimated"] = "estimated"

    def grams(self, days: int) -> int:
        return round(self.population * self.kg_per_capita_day * 1000 * days)


class NoGenerationEstimate(LookupError):
    """No population / generation rate is configured for the city."""


def generation_for(city_code: str, settings: ReportSettings | None = None) -> Generation:
    """The city's generation estimate: settings first, then the data file's ``[generation]``."""
    s = settings or ReportSettings()
    data: dict[str, Any] = {}
    path = s.generation_file or DEMO_CITY_FILE
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    if doc.get("city", {}).get("code") == city_code:
        data = dict(doc.get("generation", {}))
    population = s.population or data.get("population")
    rate = s.kg_per_capita_day or data.get("kg_per_capita_day")
    if population is None or rate is None:
        raise NoGenerationEstimate(
            f"no generation estimate for city {city_code!r}: set WASTEBANK_REPORTS__POPULATION "
            "and WASTEBANK_REPORTS__KG_PER_CAPITA_DAY (or a [generation] section)"
        )
    overridden = s.population is not None or s.kg_per_capita_day is not None
    source = s.source or ("settings" if overridden else str(data.get("source", path.name)))
    return Generation(
        city_code=city_code,
        population=int(population),
        population_year=None if overridden else data.get("population_year"),
        kg_per_capita_day=float(rate),
        source=source,
    )


# ---- estimates (CO2e avoided, energy potential): wastebank/estimates.py -------------------------


class Estimator(Protocol):
    """Per material class (``ledger.MaterialClass``) and diverted grams; None when the material
    has no factor. ``wastebank.estimates`` provides the real one."""

    name: str

    def co2e_avoided_kg(self, material_class: str, grams: int) -> float | None: ...

    def energy_kwh(self, material_class: str, grams: int) -> float | None: ...


def default_estimator() -> Estimator | None:
    """The estimator of ``wastebank.estimates`` when that module is installed, else None (the
    report then leaves CO2e and energy blank and says so)."""
    import importlib.util

    if importlib.util.find_spec("wastebank.estimates") is None:
        return None
    return _wire_estimates()


def _wire_estimates() -> Estimator | None:
    return EstimatesAdapter()


class EstimatesAdapter:
    """:class:`Estimator` over ``wastebank.estimates``: CO2e avoided = its
    ``estimate_for_categories`` (lifetime landfill CH4 avoided by IPCC FOD + WARM recycling
    credit - composting emissions of organics, AR5); energy potential = net electric kWh of the
    material's lower heating value at the default waste-to-energy efficiency
    (``thermal_energy``). A material without a factor gives None (left blank)."""

    name = (
        "wastebank.estimates: CO2e = CH4 TPA terhindar (IPCC FOD) + kredit daur ulang (US EPA "
        "WARM, indikatif) / landfill CH4 avoided + recycling credit; energi = listrik bersih dari "
        "LHV / energy = net electric from LHV"
    )

    def co2e_avoided_kg(self, material_class: str, grams: int) -> float | None:
        from wastebank import estimates

        if grams <= 0:
            return 0.0
        try:
            est = estimates.estimate_for_categories({"c": grams}, {"c": material_class}, years=1)
        except ValueError:
            return None
        return est.co2e_avoided_t * 1000

    def energy_kwh(self, material_class: str, grams: int) -> float | None:
        from wastebank import estimates

        if grams <= 0:
            return 0.0
        try:
            return estimates.thermal_energy(grams / 1_000_000, {material_class: 1.0}).electric_kwh
        except ValueError:
            return None


# ---- the city, its banks and categories -------------------------------------------------------


@dataclass(frozen=True)
class BankInfo:
    code: str
    name: str
    kelurahan: str
    kecamatan: str


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    name_id: str
    name_en: str
    sipsn_class: str
    material_class: str


@dataclass(frozen=True)
class Scope:
    """A city: its zone, its banks (by id) and every category (by id)."""

    city_id: int
    city_code: str
    city_name: str
    timezone: str
    banks: dict[int, BankInfo]
    categories: dict[int, CategoryInfo]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_scope(session: Session, city_id: int | None = None, city_code: str | None = None) -> Scope:
    """The city ``city_id`` (or ``city_code``; neither: the first city). Raises ledger.NotFound."""
    if city_id is not None:
        city = session.get(ledger.City, city_id)
    elif city_code is not None:
        city = session.scalar(select(ledger.City).where(ledger.City.code == city_code))
    else:
        city = ledger.first_city(session)
    if city is None:
        raise ledger.NotFound(f"unknown city {city_code or city_id!r}")
    rows = session.execute(
        select(ledger.Bank.id, ledger.Bank.code, ledger.Bank.name, ledger.Kelurahan.name)
        .add_columns(ledger.Kecamatan.name)
        .join(ledger.Kelurahan, ledger.Bank.kelurahan_id == ledger.Kelurahan.id)
        .join(ledger.Kecamatan, ledger.Kelurahan.kecamatan_id == ledger.Kecamatan.id)
        .where(ledger.Bank.city_id == city.id)
    )
    banks = {r[0]: BankInfo(code=r[1], name=r[2], kelurahan=r[3], kecamatan=r[4]) for r in rows}
    categories = {
        c.id: CategoryInfo(c.code, c.name_id, c.name_en, c.sipsn_class, c.material_class)
        for c in session.scalars(select(ledger.Category))
    }
    return Scope(city.id, city.code, city.name, city.timezone, banks, categories)


# ---- tonnage ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Non-voided deposits of one local day, bank, category and basis."""

    day: date
    bank_id: int
    category_id: int
    manual: bool
    net_g: int
    deposits: int


def cells(
    session: Session, scope: Scope, start: date, end: date, period: str = "day"
) -> list[Cell]:
    """Diverted grams and deposit counts per local ``period`` (its first day) x bank x category
    x manual, voided deposits left out; ``start``..``end`` are local days, both included.

    Read from the ledger's summaries, never from the deposits themselves: by month, year or in
    total, the whole local months of the range from the monthly roll-up
    (``ledger.DepositMonth``) and the days before and after them from the daily summary
    (``ledger.DepositDay``); by day or week, the daily summary. Both are kept with every
    deposit and void, and every period is a union of local days, so the sums are exact. The
    database buckets the rows by the period, so a year by month is a few thousand rows however
    many deposits it holds."""
    if not scope.banks or end < start:
        return []
    dd, dm = ledger.DepositDay, ledger.DepositMonth
    parts: list[tuple[Any, date, date]] = []  # (date column, first, last) of each table read
    if period in ("day", "week") or date.max.year in (start.year, end.year):
        parts.append((dd.local_date, start, end))
    else:
        # the whole local months of the range: from first_whole up to (not including) past_whole
        first_whole = start if start.day == 1 else _next_month(start)
        last_of_month = _next_month(end) - timedelta(days=1)
        past_whole = _next_month(end) if end == last_of_month else end.replace(day=1)
        if first_whole >= past_whole:
            parts.append((dd.local_date, start, end))
        else:
            if start < first_whole:
                parts.append((dd.local_date, start, first_whole - timedelta(days=1)))
            parts.append((dm.month, first_whole, past_whole - timedelta(days=1)))
            if past_whole <= end:
                parts.append((dd.local_date, past_whole, end))
    acc: dict[tuple[date, int, int, bool], list[int]] = defaultdict(lambda: [0, 0])
    for column, lo, hi in parts:
        for day, bank_id, category_id, manual, net_g, count in _summed(
            session, scope, column, lo, hi, period, start
        ):
            a = acc[day, bank_id, category_id, manual]
            a[0] += net_g
            a[1] += count
    return sorted(
        (Cell(day, b, c, m, g, n) for (day, b, c, m), (g, n) in acc.items() if n),
        key=lambda c: (c.day, c.bank_id, c.category_id, c.manual),
    )


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _summed(
    session: Session, scope: Scope, column: Any, lo: date, hi: date, period: str, first: date
) -> Iterator[tuple[date, int, int, bool, int, int]]:
    """(period start, bank, category, manual, grams, count) from the summary table of
    ``column`` for ``lo``..``hi``, bucketed by ``period`` in SQL (``total``: all at ``first``)."""
    table = column.table
    bucket: Any
    if period == "total":
        bucket = None
    elif period == "day" or (period == "month" and column.key == "month"):
        bucket = column
    elif session.get_bind().dialect.name == "postgresql":
        bucket = cast(func.date_trunc(period, cast(column, DateTime)), Date)  # ISO weeks
    elif period == "week":  # the Monday on or before the day
        bucket = func.date(column, "-6 days", "weekday 1")
    elif period == "month":  # SQLite keeps a date as its text, 2026-10-31
        bucket = func.substr(column, 1, 8).concat("01")
    else:
        bucket = func.substr(column, 1, 5).concat("01-01")
    keys: list[Any] = [table.c.bank_id, table.c.category_id, table.c.manual]
    if bucket is not None:
        keys.insert(0, bucket.label("bucket"))
    q = (
        select(*keys, func.sum(table.c.net_g), func.sum(table.c.deposits))
        .where(column >= lo, column <= hi, table.c.bank_id.in_(sorted(scope.banks)))
        .group_by(*keys)
    )
    for row in session.execute(q):
        values: list[Any] = list(row)
        if bucket is None:
            day = first
            bank_id, category_id, manual, net_g, count = values
        else:
            when, bank_id, category_id, manual, net_g, count = values
            if isinstance(when, datetime):
                day = when.date()
            elif isinstance(when, date):
                day = when
            else:
                day = date.fromisoformat(str(when))
        yield day, bank_id, category_id, bool(manual), int(net_g or 0), int(count or 0)


def period_start(day: date, period: str, first: date) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return date(day.year, 1, 1)
    return first  # total


def _group_key(scope: Scope, cell: Cell, group: str) -> tuple[str, str, str | None]:
    """(key, name, parent) of the cell in ``group``."""
    bank = scope.banks[cell.bank_id]
    cat = scope.categories[cell.category_id]
    if group == "bank":
        return bank.code, bank.name, bank.kelurahan
    if group == "kelurahan":
        return f"{bank.kecamatan}/{bank.kelurahan}", bank.kelurahan, bank.kecamatan
    if group == "kecamatan":
        return bank.kecamatan, bank.kecamatan, scope.city_code
    if group == "city":
        return scope.city_code, scope.city_name, None
    if group == "category":
        return cat.code, f"{cat.name_id} / {cat.name_en}", cat.sipsn_class
    sipsn = SIPSN_NAMES.get(cat.sipsn_class, (cat.sipsn_class, cat.sipsn_class))
    return cat.sipsn_class, f"{sipsn[0]} / {sipsn[1]}", None


def basis_of(measured_g: int, estimated_g: int) -> Basis:
    if measured_g and estimated_g:
        return "mixed"
    if estimated_g:
        return "estimated"
    return "measured" if measured_g else "none"


class TonnageRow(BaseModel):
    period_start: date
    key: str
    name: str
    parent: str | None = None
    deposits: int
    net_g: int
    measured_g: int = Field(description="weighed on a scale")
    estimated_g: int = Field(description="entered by hand (manual deposits)")
    measured_deposits: int
    estimated_deposits: int
    basis: Basis


class Tonnage(BaseModel):
    """Diverted from the TPA (SIPSN pengurangan), from the ledger, voids left out."""

    city_code: str
    timezone: str
    zone: str
    start: date
    end: date
    group: str
    period: str
    source: Literal["ledger"] = "ledger"
    total_g: int
    measured_g: int
    estimated_g: int
    rows: list[TonnageRow]


def tonnage(
    session: Session,
    scope: Scope,
    start: date,
    end: date,
    group: str = "kecamatan",
    period: str = "total",
    *,
    data: Sequence[Cell] | None = None,
) -> Tonnage:
    """Diverted tonnage by ``group`` and ``period`` (local), ``start``..``end`` included."""
    if group not in GROUPS or period not in PERIODS:
        raise ValueError(f"group {group!r} or period {period!r} not one of {GROUPS} / {PERIODS}")
    if end < start:
        raise ValueError("end before start")
    found = cells(session, scope, start, end, period) if data is None else data
    acc: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    names: dict[str, tuple[str, str | None]] = {}
    for c in found:
        key, name, parent = _group_key(scope, c, group)
        names[key] = (name, parent)
        a = acc[period_start(c.day, period, start), key]
        a[0 if c.manual else 1] += c.net_g  # 0: estimated, 1: measured
        a[2 if c.manual else 3] += c.deposits
    rows = [
        TonnageRow(
            period_start=p,
            key=k,
            name=names[k][0],
            parent=names[k][1],
            deposits=a[2] + a[3],
            net_g=a[0] + a[1],
            measured_g=a[1],
            estimated_g=a[0],
            measured_deposits=a[3],
            estimated_deposits=a[2],
            basis=basis_of(a[1], a[0]),
        )
        for (p, k), a in sorted(acc.items())
    ]
    return Tonnage(
        city_code=scope.city_code,
        timezone=scope.timezone,
        zone=zone_label(scope.tz, datetime.combine(start, time(12), scope.tz)),
        start=start,
        end=end,
        group=group,
        period=period,
        total_g=sum(r.net_g for r in rows),
        measured_g=sum(r.measured_g for r in rows),
        estimated_g=sum(r.estimated_g for r in rows),
        rows=rows,
    )


# ---- reduction share against the Jakstrada target ----------------------------------------------


class Reduction(BaseModel):
    """One year's pengurangan by the city's waste banks as a share of its estimated generation.

    For the year in progress, generation is counted for the days up to ``end`` (today, local),
    so the share compares like with like."""

    city_code: str
    year: int
    start: date
    end: date
    days: int
    complete: bool
    generation: Generation
    generation_g: int
    diverted_g: int
    measured_g: int
    estimated_g: int
    share_pct: float
    target_pct: float
    target_met: bool
    basis: Literal["estimated"] = "estimated"  # the share divides by an estimate


def reduction(
    session: Session,
    scope: Scope,
    year: int,
    settings: ReportSettings | None = None,
    *,
    today: date | None = None,
) -> Reduction:
    s = settings or ReportSettings()
    gen = generation_for(scope.city_code, s)
    start = date(year, 1, 1)
    last = date(year, 12, 31)
    today = today or datetime.now(scope.tz).date()
    end = min(last, today)
    if end < start:
        raise ValueError(f"{year} has not begun")
    t = tonnage(session, scope, start, end, "city", "total")
    days = (end - start).days + 1
    generation_g = gen.grams(days)
    share = 100.0 * t.total_g / generation_g if generation_g else 0.0
    return Reduction(
        city_code=scope.city_code,
        year=year,
        start=start,
        end=end,
        days=days,
        complete=end == last,
        generation=gen,
        generation_g=generation_g,
        diverted_g=t.total_g,
        measured_g=t.measured_g,
        estimated_g=t.estimated_g,
        share_pct=round(share, 4),
        target_pct=s.reduction_target_pct,
        target_met=share >= s.reduction_target_pct,
    )


# ---- the monthly DLH report ---------------------------------------------------------------------


class MonthlyRow(BaseModel):
    kecamatan: str
    category: str
    category_name_id: str
    category_name_en: str
    sipsn_class: str
    material_class: str
    deposits: int
    net_g: int
    measured_g: int
    estimated_g: int
    share_pct: float | None = Field(description="of the month's estimated generation")
    co2e_avoided_kg: float | None = Field(description="estimated (wastebank.estimates)")
    energy_kwh: float | None = Field(description="estimated potential (wastebank.estimates)")


class DiversionRow(BaseModel):
    """Diverted (the waste banks) against TPA-bound (the TPS pickups, estimated) in a kecamatan
    (a TPS's kecamatan is its kelurahan's) for the month."""

    kecamatan: str
    diverted_g: int
    tpa_bound_kg: float = Field(description="estimated: Σ pickups x volume x fill x density")
    pickups: int
    rate: float | None = Field(description="diverted / (diverted + TPA-bound), 0..1")


NO_KECAMATAN = "(tanpa kecamatan / no kecamatan)"


class MonthlyReport(BaseModel):
    city_code: str
    city_name: str
    timezone: str
    zone: str
    month: str  # 2026-10
    start: date
    end: date
    generated_at: datetime
    generation: Generation | None
    generation_g: int | None
    estimator: str | None
    rows: list[MonthlyRow]
    total: MonthlyRow
    diversion: list[DiversionRow] = Field(default_factory=list)
    diversion_total: DiversionRow | None = None


# The days a report may cover: waste banks and their sensors are of this century. Outside it a
# day is refused (422), not computed: near year 1 or 9999 a day's bounds in the city's zone (or
# the next month) are past what Python's dates and InfluxDB's times hold.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def parse_month(text: str) -> tuple[date, date]:
    """``2026-10`` -> (2026-10-01, 2026-10-31); a month from 2000-01 to 2100-12."""
    try:
        year, month = (int(p) for p in text.split("-"))
        first = date(year, month, 1)
    except ValueError:
        raise ValueError(f"not a month: {text!r} (e.g. 2026-10)") from None
    if len(text) != 7:
        raise ValueError(f"not a month: {text!r} (e.g. 2026-10)")
    if not FIRST_DAY <= first <= LAST_DAY:
        raise ValueError(
            f"bulan di luar {FIRST_DAY:%Y-%m}..{LAST_DAY:%Y-%m} / a month outside "
            f"{FIRST_DAY:%Y-%m}..{LAST_DAY:%Y-%m}: {text!r}"
        )
    return first, date(year, month, calendar.monthrange(year, month)[1])


def monthly_report(
    session: Session,
    scope: Scope,
    month: str,
    settings: ReportSettings | None = None,
    *,
    estimator: Estimator | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonthlyReport:
    """Per kecamatan x category: deposits, kg (measured / estimated), share of the month's
    estimated generation, CO2e avoided and energy potential (estimates)."""
    step = progress or (lambda _what: None)
    first, last = parse_month(month)
    step("membaca buku besar / reading the ledger")
    found = cells(session, scope, first, last, "total")
    step("menjumlahkan / summing")
    try:
        gen: Generation | None = generation_for(scope.city_code, settings)
    except NoGenerationEstimate:
        gen = None
    generation_g = gen.grams((last - first).days + 1) if gen else None
    acc: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for c in found:
        a = acc[scope.banks[c.bank_id].kecamatan, c.category_id]
        a[0 if c.manual else 1] += c.net_g
        a[2] += c.deposits
    step("estimasi CO2e dan energi / estimating CO2e and energy")
    rows = [
        _monthly_row(kec, scope.categories[cat_id], a, generation_g, estimator)
        for (kec, cat_id), a in acc.items()
    ]
    rows.sort(key=lambda r: (r.kecamatan, r.category))
    total = MonthlyRow(
        kecamatan="Jumlah / Total",
        category="",
        category_name_id="",
        category_name_en="",
        sipsn_class="",
        material_class="",
        deposits=sum(r.deposits for r in rows),
        net_g=sum(r.net_g for r in rows),
        measured_g=sum(r.measured_g for r in rows),
        estimated_g=sum(r.estimated_g for r in rows),
        share_pct=_share(sum(r.net_g for r in rows), generation_g),
        co2e_avoided_kg=_sum_or_none(r.co2e_avoided_kg for r in rows),
        energy_kwh=_sum_or_none(r.energy_kwh for r in rows),
    )
    step("membaca jurnal pengangkutan TPS / reading the TPS pickup journal")
    diversion, diversion_total = _diversion(session, scope, first, last, rows)
    return MonthlyReport(
        city_code=scope.city_code,
        city_name=scope.city_name,
        timezone=scope.timezone,
        zone=zone_label(scope.tz, datetime.combine(first, time(12), scope.tz)),
        month=month,
        start=first,
        end=last,
        generated_at=now or datetime.now(UTC),
        generation=gen,
        generation_g=generation_g,
        estimator=estimator.name if estimator else None,
        rows=rows,
        total=total,
        diversion=diversion,
        diversion_total=diversion_total,
    )


def _diversion(
    session: Session, scope: Scope, first: date, last: date, rows: Sequence[MonthlyRow]
) -> tuple[list[DiversionRow], DiversionRow]:
    """Per kecamatan and in all: the month's diverted grams (``rows``) against the TPA-bound
    kg of its TPS from the pickup journal (:func:`wastebank.tps.journal_totals`: the TPS's
    current volume and density); local days ``first``..``last``."""
    from wastebank import tps

    start = datetime.combine(first, time(0), scope.tz)
    end = datetime.combine(last + timedelta(days=1), time(0), scope.tz)
    registry = tps.city_tps(session, scope.city_id)
    kecamatan_of = {
        t.code: t.kelurahan.kecamatan.name if t.kelurahan is not None else NO_KECAMATAN
        for t in registry
    }
    diverted: dict[str, int] = defaultdict(int)
    for r in rows:
        diverted[r.kecamatan] += r.net_g
    bound: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # kg, pickups
    for code, found in tps.journal_totals(session, registry, start, end).items():
        b = bound[kecamatan_of[code]]
        b[0] += found.mass_kg
        b[1] += found.pickups
    keys = sorted(set(diverted) | set(bound) | set(kecamatan_of.values()))

    def row(name: str, grams: int, kg: float, pickups: int) -> DiversionRow:
        return DiversionRow(
            kecamatan=name,
            diverted_g=grams,
            tpa_bound_kg=kg,
            pickups=pickups,
            rate=tps.diversion_rate(grams / 1_000_000, kg / 1000),
        )

    out = []
    for k in keys:
        mass_kg, pickups = bound.get(k, [0.0, 0.0])
        out.append(row(k, diverted.get(k, 0), mass_kg, int(pickups)))
    total = row(
        "Jumlah / Total",
        sum(r.diverted_g for r in out),
        sum(r.tpa_bound_kg for r in out),
        sum(r.pickups for r in out),
    )
    return out, total


def _share(net_g: int, generation_g: int | None) -> float | None:
    return round(100.0 * net_g / generation_g, 6) if generation_g else None


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _monthly_row(
    kecamatan: str,
    cat: CategoryInfo,
    a: list[int],
    generation_g: int | None,
    estimator: Estimator | None,
) -> MonthlyRow:
    net_g = a[0] + a[1]
    return MonthlyRow(
        kecamatan=kecamatan,
        category=cat.code,
        category_name_id=cat.name_id,
        category_name_en=cat.name_en,
        sipsn_class=cat.sipsn_class,
        material_class=cat.material_class,
        deposits=a[2],
        net_g=net_g,
        measured_g=a[1],
        estimated_g=a[0],
        share_pct=_share(net_g, generation_g),
        co2e_avoided_kg=estimator.co2e_avoided_kg(cat.material_class, net_g) if estimator else None,
        energy_kwh=estimator.energy_kwh(cat.material_class, net_g) if estimator else None,
    )


# ---- renderers ----------------------------------------------------------------------------------

CSV_HEADER = (
    "bulan / month",
    "kecamatan / sub-district",
    "kategori / category",
    "nama kategori / category name",
    "kelas SIPSN / SIPSN class",
    "setoran / deposits",
    "berat kg / weight kg",
    "terukur kg / measured kg",
    "estimasi kg / estimated kg",
    "pengurangan % timbulan / reduction % of generation",
    "CO2e terhindar kg (estimasi) / CO2e avoided kg (estimated)",
    "potensi energi kWh (estimasi) / energy potential kWh (estimated)",
)


def _kg_plain(grams: int) -> str:
    """``1234.500``: exact, dot decimals (machine-readable)."""
    sign = "-" if grams < 0 else ""
    whole, rest = divmod(abs(grams), 1000)
    return f"{sign}{whole}.{rest:03d}"


def _opt(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _csv_row(month: str, r: MonthlyRow) -> list[str]:
    name = f"{r.category_name_id} / {r.category_name_en}" if r.category else ""
    return [
        month,
        r.kecamatan,
        r.category,
        name,
        r.sipsn_class,
        str(r.deposits),
        _kg_plain(r.net_g),
        _kg_plain(r.measured_g),
        _kg_plain(r.estimated_g),
        _opt(r.share_pct, 4),
        _opt(r.co2e_avoided_kg, 3),
        _opt(r.energy_kwh, 3),
    ]


def monthly_csv(report: MonthlyReport) -> str:
    """One header line, one line per kecamatan x category, the total; dot decimals, kg exact.
    (The TPA-bound and diversion rate by kecamatan, whose rows are not by category, are in the
    XLSX's ``Pengalihan`` sheet, the PDF and ``/api/dlh/diversion``.)"""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in report.rows:
        w.writerow(_csv_row(report.month, r))
    w.writerow(_csv_row(report.month, report.total))
    return out.getvalue()


def _month_title(report: MonthlyReport) -> str:
    return f"{MONTH_NAMES_ID[report.start.month - 1]} {report.start.year}"


def _notes(report: MonthlyReport) -> list[tuple[str, str]]:
    gen = report.generation
    gen_text = (
        f"{gen.population:,} jiwa x {gen.kg_per_capita_day} kg/orang/hari "
        f"= {_kg_plain(report.generation_g or 0)} kg; sumber / source: {gen.source}"
        if gen
        else "tidak diatur / not configured (WASTEBANK_REPORTS__*)"
    )
    return [
        ("Kota / City", f"{report.city_name} ({report.city_code})"),
        ("Bulan / Month", f"{_month_title(report)} ({report.month})"),
        (
            "Periode / Period",
            f"{tanggal(report.start)} - {tanggal(report.end)}, waktu setempat / local time "
            f"{report.zone} ({report.timezone})",
        ),
        (
            "Sumber data / Data source",
            ("buku besar, setoran batal tidak dihitung / the ledger, voided deposits excluded"),
        ),
        ("Timbulan (estimasi) / Generation (estimated)", gen_text),
        (
            "CO2e & energi / CO2e & energy",
            report.estimator or "belum tersedia / not available (wastebank.estimates)",
        ),
        (
            "Terukur / Measured",
            "ditimbang / weighed on a scale; estimasi / estimated: entri manual / manual entries",
        ),
        ("Ke TPA (estimasi) / TPA-bound (estimated)", _tpa_text(report)),
    ]


def _tpa_text(report: MonthlyReport) -> str:
    t = report.diversion_total
    if t is None:
        return "tidak dihitung / not computed"
    rate = "-" if t.rate is None else f"{100 * t.rate:.2f} %"
    return (
        f"{t.tpa_bound_kg / 1000:.3f} t, {t.pickups} pengangkutan TPS / TPS pickups "
        "(volume kontainer x tingkat isi x berat jenis / container volume x fill x bulk "
        f"density); tingkat pengalihan / diversion rate {rate} "
        "(bank sampah / (bank sampah + TPA) / waste banks / (waste banks + TPA-bound))"
    )


DIVERSION_HEADER = (
    "kecamatan / sub-district",
    "bank sampah kg / waste banks kg",
    "ke TPA kg (estimasi) / TPA-bound kg (estimated)",
    "pengangkutan TPS / TPS pickups",
    "tingkat pengalihan / diversion rate",
)


def monthly_xlsx(report: MonthlyReport) -> bytes:
    """Sheet ``Laporan`` (notes, the table, the total: number formats), sheet ``Per kategori``
    (kg per category and a bar chart of it)."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Laporan"
    ws["A1"] = "LAPORAN PENGURANGAN SAMPAH BANK SAMPAH / WASTE BANK REDUCTION REPORT"
    ws["A1"].font = Font(bold=True, size=13)
    row = 2
    for label, value in _notes(report):
        ws.cell(row=row, column=1, value=label).font = Font(bold=True)
        ws.cell(row=row, column=2, value=value)
        row += 1
    header_row = row + 1
    for col, title in enumerate(CSV_HEADER[1:], start=1):
        ws.cell(row=header_row, column=col, value=title).font = Font(bold=True)
    formats: tuple[str | None, ...] = (
        None,
        None,
        None,
        None,
        "#,##0",
        "#,##0.000",
        "#,##0.000",
        "#,##0.000",
        "0.0000%",
    )
    formats += ("#,##0.000", "#,##0.000")
    r = header_row
    for item in [*report.rows, report.total]:
        r += 1
        name = f"{item.category_name_id} / {item.category_name_en}" if item.category else None
        values: list[Any] = [
            item.kecamatan,
            item.category or None,
            name,
            item.sipsn_class or None,
            item.deposits,
            item.net_g / 1000,
            item.measured_g / 1000,
            item.estimated_g / 1000,
            None if item.share_pct is None else item.share_pct / 100,
            item.co2e_avoided_kg,
            item.energy_kwh,
        ]
        for col, (value, fmt) in enumerate(zip(values, formats, strict=True), start=1):
            cell = ws.cell(row=r, column=col, value=value)
            if fmt:
                cell.number_format = fmt
            if item is report.total:
                cell.font = Font(bold=True)
    for letter, width in zip(
        "ABCDEFGHIJK", (22, 14, 32, 16, 12, 16, 16, 16, 16, 18, 18), strict=True
    ):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = f"A{header_row + 1}"

    by_cat: dict[str, int] = defaultdict(int)
    for item in report.rows:
        by_cat[f"{item.category_name_id} / {item.category_name_en}"] += item.net_g
    cs = wb.create_sheet("Per kategori")
    cs.append(["Kategori / Category", "Berat kg / Weight kg"])
    for name, grams in sorted(by_cat.items()):
        cs.append([name, grams / 1000])
        cs.cell(row=cs.max_row, column=2).number_format = "#,##0.000"
    cs.column_dimensions["A"].width = 34
    cs.column_dimensions["B"].width = 16
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Tonase per kategori / Tonnage by category, {report.month}"
    chart.y_axis.title = "kg"
    chart.x_axis.title = "Kategori / Category"
    n = len(by_cat)
    chart.add_data(Reference(cs, min_col=2, min_row=1, max_row=n + 1), titles_from_data=True)
    chart.set_categories(Reference(cs, min_col=1, min_row=2, max_row=max(n + 1, 2)))
    chart.height, chart.width = 9, 18
    cs.add_chart(chart, "D2")

    ds = wb.create_sheet("Pengalihan")  # diversion: waste banks against TPA-bound, by kecamatan
    ds.append(list(DIVERSION_HEADER))
    for col in range(1, len(DIVERSION_HEADER) + 1):
        ds.cell(row=1, column=col).font = Font(bold=True)
    total_row = report.diversion_total
    for d in [*report.diversion, *([total_row] if total_row else [])]:
        ds.append([d.kecamatan, d.diverted_g / 1000, d.tpa_bound_kg, d.pickups, d.rate])
        for col, fmt in ((2, "#,##0.000"), (3, "#,##0.0"), (4, "#,##0"), (5, "0.00%")):
            ds.cell(row=ds.max_row, column=col).number_format = fmt
        if d is total_row:
            for col in range(1, 6):
                ds.cell(row=ds.max_row, column=col).font = Font(bold=True)
    for letter, width in zip("ABCDE", (30, 20, 26, 18, 20), strict=True):
        ds.column_dimensions[letter].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def monthly_pdf(report: MonthlyReport) -> bytes:
    """Printable A4 landscape: notes, the table with Indonesian number formats, the total."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    printed = tanggal_waktu(report.generated_at, ZoneInfo(report.timezone))

    class _Doc(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("helvetica", size=7)
            self.cell(
                0,
                5,
                latin1(
                    f"{report.city_name} {report.month} - dicetak / printed {printed} - "
                    f"halaman / page {self.page_no()}/{{nb}}"
                ),
                align="C",
            )

    pdf = _Doc(orientation="landscape", unit="mm", format="A4")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_creator("wastebank")
    pdf.set_title(latin1(f"Laporan bulanan DLH {report.city_name} {report.month}"))
    pdf.add_page()
    pdf.set_font("helvetica", "B", 13)
    pdf.cell(
        0,
        7,
        latin1(f"LAPORAN BULANAN PENGURANGAN SAMPAH - {_month_title(report).upper()}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("helvetica", size=9)
    pdf.cell(0, 5, "Monthly waste reduction report (waste banks)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=8)
    for label, value in _notes(report):
        if label.startswith("Timbulan") and report.generation:
            g = report.generation
            value = (
                f"{number(g.population, 0)} jiwa x {number(g.kg_per_capita_day, 2)} "
                f"kg/orang/hari = {kg(report.generation_g or 0)}; sumber / source: {g.source}"
            )
        pdf.cell(70, 4.5, latin1(label))
        pdf.multi_cell(0, 4.5, latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    headings = (
        "Kecamatan",
        "Kategori / Category",
        "Setoran / Deposits",
        "Berat / Weight",
        "Terukur / Measured",
        "Estimasi / Estimated",
        "% timbulan / % generation",
        "CO2e terhindar (est.) kg",
        "Energi (est.) kWh",
    )
    with pdf.table(
        col_widths=(34, 56, 20, 28, 28, 28, 26, 26, 27),
        text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4.2,
        width=273,
    ) as table:
        table.row([latin1(h) for h in headings])
        for item in [*report.rows, report.total]:
            name = f"{item.category_name_id} / {item.category_name_en}" if item.category else ""
            style = FontFace(emphasis="BOLD") if item is report.total else None
            table.row(
                [
                    latin1(item.kecamatan),
                    latin1(name),
                    number(item.deposits, 0),
                    kg(item.net_g),
                    kg(item.measured_g),
                    kg(item.estimated_g),
                    percent(item.share_pct, 4),
                    number(item.co2e_avoided_kg, 1),
                    number(item.energy_kwh, 1),
                ],
                style=style,
            )
    if not report.rows:
        pdf.cell(0, 6, "(tidak ada setoran / no deposits)", new_x="LMARGIN", new_y="NEXT")
    if report.diversion_total is not None:
        pdf.ln(3)
        pdf.set_font("helvetica", "B", 9)
        pdf.cell(
            0,
            5,
            "Pengalihan dari TPA per kecamatan / Diversion from the TPA by sub-district",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font("helvetica", size=8)
        with pdf.table(
            col_widths=(60, 40, 48, 34, 34),
            text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
            borders_layout="HORIZONTAL_LINES",
            headings_style=FontFace(emphasis="BOLD"),
            line_height=4.2,
            width=216,
            align="LEFT",
        ) as table:
            table.row(
                [
                    "Kecamatan",
                    "Bank sampah / Waste banks",
                    latin1("Ke TPA (est.) / TPA-bound (est.)"),
                    "Pengangkutan / Pickups",
                    "Pengalihan / Diversion",
                ]
            )
            for d in [*report.diversion, report.diversion_total]:
                style = FontFace(emphasis="BOLD") if d is report.diversion_total else None
                table.row(
                    [
                        latin1(d.kecamatan),
                        kg(d.diverted_g),
                        f"{number(d.tpa_bound_kg, 1)} kg",
                        number(d.pickups, 0),
                        percent(None if d.rate is None else 100 * d.rate, 2),
                    ],
                    style=style,
                )
    return bytes(pdf.output())


FORMATS = ("xlsx", "csv", "pdf")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


def render(report: MonthlyReport, fmt: str) -> bytes:
    """The report as ``fmt`` bytes (CSV: UTF-8 with the BOM Excel looks for)."""
    if fmt == "xlsx":
        return monthly_xlsx(report)
    if fmt == "pdf":
        return monthly_pdf(report)
    if fmt == "csv":
        return monthly_csv(report).encode("utf-8-sig")
    raise ValueError(f"unknown format {fmt!r}: one of {FORMATS}")


def filename(report: MonthlyReport, fmt: str) -> str:
    return f"laporan-dlh-{report.city_code}-{report.month}.{fmt}"
