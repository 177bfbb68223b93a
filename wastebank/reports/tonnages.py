"""Tonnage diverted from the TPA (SIPSN *pengurangan*) by group and period, and one year's
reduction share of the city's estimated generation against the Jakstrada target."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from wastebank.formats import zone_label
from wastebank.reports.generation import Generation, ReportSettings, generation_for
from wastebank.reports.scope import GROUPS, PERIODS, Basis, Scope, sipsn_name
from wastebank.reports.summary import Cell, cells


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
    return cat.sipsn_class, sipsn_name(cat.sipsn_class), None


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
