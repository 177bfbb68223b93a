"""The monthly DLH report's figures: per kecamatan x category, deposits, kg (measured /
estimated), share of the month's estimated generation and the estimated impact (each figure a
low/central/high range: CO2e in its parts, the energy recycling saved, the waste-to-energy
potential; :class:`wastebank.estimates.Impact`); and per kecamatan, diverted against TPA-bound
(the TPS pickup journal), with the coverage that says whether the city's rate may be shown."""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.estimates import Impact, sum_impacts
from wastebank.formats import zone_label
from wastebank.messages import CLOCK_AHEAD_TOLERANCE
from wastebank.reports.generation import (
    Generation,
    ImpactEstimator,
    NoGenerationEstimate,
    ReportSettings,
    generation_for,
    tps_in_city,
)
from wastebank.reports.scope import CategoryInfo, Coverage, Scope, diversion_coverage
from wastebank.reports.summary import cells


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
    impact: Impact | None = Field(description="estimated, each figure low/central/high")


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
    coverage: Coverage | None = Field(
        default=None, description="whether the diversion rates may be shown as the city's"
    )
    unsynced_clock_deposits: int = Field(
        default=0,
        description="the month's deposits (voids left out) stamped by a gateway whose clock was "
        "not yet synchronized (deposit.clock_synced false): their times may be hours off",
    )
    clock_ahead_deposits: int = Field(
        default=0,
        description="the month's deposits (voids left out) stamped later than the ledger "
        "received them by more than the clock-ahead tolerance (2 min): kept as stamped, their "
        "times (and so their month) may be wrong",
    )

    def by_category(self) -> list[tuple[str, int, Impact | None]]:
        """(category name, grams, impact) per category over every kecamatan, by name."""
        acc: dict[str, list[MonthlyRow]] = defaultdict(list)
        for r in self.rows:
            acc[f"{r.category_name_id} / {r.category_name_en}"].append(r)
        return [
            (name, sum(r.net_g for r in rows), _sum_impacts(r.impact for r in rows))
            for name, rows in sorted(acc.items())
        ]


# The days a report may cover: waste banks and their sensors are of this century. Outside it a
# day is refused (422), not computed: near year 1 or 9999 a day's bounds in the city's zone (or
# the next month) are past what Python's dates and InfluxDB's times hold.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


_MONTH = re.compile(r"(-?\d+)-(\d{2})")


def parse_month(text: str) -> tuple[date, date]:
    """``2026-10`` -> (2026-10-01, 2026-10-31); a month from 2000-01 to 2100-12. What is wrong
    is said: the shape, the year (0000, 10000, a negative one: its digits as given, no date or
    number is made of them) or the month."""
    m = _MONTH.fullmatch(text)
    if m is None:
        raise ValueError(f"bukan bulan / not a month: {text!r} (YYYY-MM, e.g. 2026-10)")
    year_text, month_text = m[1], m[2]
    if not (
        len(year_text) == 4
        and year_text.isdigit()
        and FIRST_DAY.year <= int(year_text) <= LAST_DAY.year
    ):
        span, months = f"{FIRST_DAY.year}..{LAST_DAY.year}", f"{FIRST_DAY:%Y-%m}..{LAST_DAY:%Y-%m}"
        year = year_text if len(year_text) <= 12 else f"{year_text[:12]}…"
        raise ValueError(
            f"tahun {year} di luar {span} (bulan {months}) / the year {year} is out of range "
            f"{span} (months {months})"
        )
    year, month = int(year_text), int(month_text)
    if not 1 <= month <= 12:
        raise ValueError(
            f"bulan {month_text} bukan 01..12 / the month {month_text} is not 01..12: {text!r}"
        )
    first = date(year, month, 1)
    return first, date(year, month, calendar.monthrange(year, month)[1])


def monthly_report(
    session: Session,
    scope: Scope,
    month: str,
    settings: ReportSettings | None = None,
    *,
    estimator: ImpactEstimator | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonthlyReport:
    """Per kecamatan x category: deposits, kg (measured / estimated), share of the month's
    estimated generation, the estimated impact (ranges); the diversion by kecamatan and its
    coverage ([reports] ``diversion_coverage``)."""
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
        impact=_sum_impacts(r.impact for r in rows) if estimator else None,
    )
    step("membaca jurnal pengangkutan TPS / reading the TPS pickup journal")
    diversion, diversion_total, coverage = _diversion(session, scope, first, last, rows, settings)
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
        coverage=coverage,
        **_clock_counts(session, scope, first, last),
    )


def _clock_counts(session: Session, scope: Scope, first: date, last: date) -> dict[str, int]:
    """Of the deposits of the city's banks stamped in local days ``first``..``last`` (voided
    ones left out as everywhere in the report): ``unsynced_clock_deposits``, those whose gateway
    said its clock was not synchronized (``clock_synced`` false; None, not said, is not
    counted), and ``clock_ahead_deposits``, those stamped later than the ledger received them by
    more than :data:`~wastebank.messages.CLOCK_AHEAD_TOLERANCE`. By the time they carry, as
    every figure of the report: a stamp hours off may put one in the neighbouring month."""
    if not scope.banks:
        return {"unsynced_clock_deposits": 0, "clock_ahead_deposits": 0}
    start = datetime.combine(first, time(0), scope.tz)
    end = datetime.combine(last + timedelta(days=1), time(0), scope.tz)
    d = ledger.Deposit
    rows = session.execute(
        select(d.clock_synced, d.measured_at, d.recorded_at).where(
            d.bank_id.in_(list(scope.banks)),
            d.measured_at >= start,
            d.measured_at < end,
            (d.clock_synced.is_(False)) | (d.measured_at > d.recorded_at),
            d.id.not_in(select(ledger.DepositVoid.deposit_id)),
        )
    )
    unsynced = ahead = 0
    for synced, measured, recorded in rows:
        unsynced += synced is False
        ahead += measured - recorded > CLOCK_AHEAD_TOLERANCE
    return {"unsynced_clock_deposits": unsynced, "clock_ahead_deposits": ahead}


def _diversion(
    session: Session,
    scope: Scope,
    first: date,
    last: date,
    rows: Sequence[MonthlyRow],
    settings: ReportSettings | None,
) -> tuple[list[DiversionRow], DiversionRow, Coverage]:
    """Per kecamatan and in all: the month's diverted grams (``rows``) against the TPA-bound
    kg of its TPS from the pickup journal (:func:`wastebank.tps.journal_totals`: the TPS's
    current volume and density); local days ``first``..``last``. The coverage counts a TPS as
    reporting when the journal has a pickup of it in the month (the report reads the ledger
    only, not the sensors' readings: a TPS whose sensor reported but saw no pickup is not
    counted, so the coverage is never overstated)."""
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
    journal = tps.journal_totals(session, registry, start, end)
    for code, found in journal.items():
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
    in_city = tps_in_city(scope.city_code, settings)
    coverage = diversion_coverage(
        tps_with_sensors=len(registry),
        tps_reporting=len(journal),
        tps_in_city=in_city[0] if in_city else None,
        pickups=total.pickups,
        rule=(settings or ReportSettings()).diversion_coverage,
        tps_in_city_source=in_city[1] if in_city else None,
    )
    return out, total, coverage


def _share(net_g: int, generation_g: int | None) -> float | None:
    return round(100.0 * net_g / generation_g, 6) if generation_g else None


def _sum_impacts(impacts: Iterable[Impact | None]) -> Impact | None:
    known = [i for i in impacts if i is not None]
    return sum_impacts(known) if known else None


def _monthly_row(
    kecamatan: str,
    cat: CategoryInfo,
    a: list[int],
    generation_g: int | None,
    estimator: ImpactEstimator | None,
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
        impact=estimator.impact(cat.material_class, net_g) if estimator else None,
    )
