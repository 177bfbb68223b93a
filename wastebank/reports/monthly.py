"""The monthly DLH report's figures: per kecamatan x category, deposits, kg (measured /
estimated), share of the month's estimated generation, CO2e avoided and energy potential; and per
kecamatan, diverted against TPA-bound (the TPS pickup journal)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from wastebank.formats import zone_label
from wastebank.reports.generation import (
    Estimator,
    Generation,
    NoGenerationEstimate,
    ReportSettings,
    generation_for,
)
from wastebank.reports.scope import CategoryInfo, Scope
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
