"""Estimates for DLH staff (wastebank/estimates/): what a month's diversion is estimated to be
worth, and a waste-to-energy plant (PLTSa) scenario. Every figure is a range, central first
(``{"central", "low", "high"}``); docs/estimates.md says what each one is and how it is computed.
Who may call: as api/dlh.py (DLH staff their own city, admins any city with ``city=``).

  GET /api/dlh/estimates?month=2026-10[&city=]     per category and total
  GET /api/dlh/wte-scenario?tonnes_per_day=1000[&mix=|composition=][&efficiency=]
      [&regulation=perpres_35_2018|perpres_109_2025][&idr_per_usd=]
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from api.deps import PrincipalDep, StateDep, refusals
from api.dlh import CityQuery, MonthQuery, read_in_city
from wastebank import estimates, reports

router = APIRouter(prefix="/api/dlh", tags=["dlh"])

ASSUMPTIONS = estimates.Text(
    id=(
        "GWP AR5; TPA tak terkategori (MCF 0,6); iklim tropis basah; sampah organik dikomposkan; "
        "kadar air dan nilai kalor sampah Indonesia. Rentang: setiap koefisien di ujung "
        "rentangnya yang menurunkan (rendah) atau menaikkan (tinggi) angka itu."
    ),
    en=(
        "GWP AR5; uncategorised TPA (MCF 0.6); tropical wet climate; organics composted; "
        "Indonesian moisture and heating values. Range: every coefficient at the end of its "
        "range that lowers (low) or raises (high) the figure."
    ),
)


class CategoryImpact(BaseModel):
    code: str
    name_id: str
    name_en: str
    material_class: str
    impact: estimates.Impact


class MonthEstimates(BaseModel):
    """What the city's waste banks diverted in a month (the ledger, voids left out) is estimated
    to be worth, per category and in total. ``figures``: each impact field's unit, label and
    basis in words (Bahasa Indonesia, English)."""

    city_code: str
    timezone: str
    month: str
    start: date
    end: date
    basis: Literal["estimated"] = "estimated"
    categories: list[CategoryImpact]
    total: estimates.Impact
    figures: dict[str, estimates.Figure]
    assumptions: estimates.Text
    data: list[estimates.DataRef]  # the coefficient files (id, version) the figures use


def _data_refs() -> list[estimates.DataRef]:
    d = estimates.default_data()
    files = (d.ipcc, d.warm, d.recycling_energy, d.energy, d.gwp)
    return [estimates.data_ref(f, f.sources) for f in files]


@router.get("/estimates", responses=refusals(401, 403, 404, 422))
async def month_estimates(
    state: StateDep,
    p: PrincipalDep,
    month: MonthQuery,
    city: CityQuery = None,
) -> MonthEstimates:
    """Per category and in total: net CO2e avoided and its parts (landfill methane avoided,
    committed over the waste's lifetime; recycling credit; composting emissions), energy saved by
    recycling (GJ and kWh-equivalent) and the waste-to-energy potential, each low/central/high."""

    def work(session: Session, scope: reports.Scope) -> MonthEstimates:
        start, end = reports.parse_month(month)
        by_cat = reports.tonnage(session, scope, start, end, "category", "total")
        by_code = {c.code: c for c in scope.categories.values()}
        estimator = reports.EstimatesAdapter()
        rows = []
        for r in sorted(by_cat.rows, key=lambda r: -r.net_g):
            c = by_code[r.key]
            rows.append(
                CategoryImpact(
                    code=c.code,
                    name_id=c.name_id,
                    name_en=c.name_en,
                    material_class=c.material_class,
                    impact=estimator.impact(c.material_class, r.net_g),
                )
            )
        return MonthEstimates(
            city_code=scope.city_code,
            timezone=scope.timezone,
            month=month,
            start=start,
            end=end,
            categories=rows,
            total=estimates.sum_impacts(row.impact for row in rows),
            figures=dict(estimates.FIGURES),
            assumptions=ASSUMPTIONS,
            data=_data_refs(),
        )

    return await anyio.to_thread.run_sync(read_in_city, state, p, city, work)


def parse_composition(text: str) -> dict[str, float]:
    """``food:40.1,plastics:18.7`` -> shares by energy component (any scale). ValueError names
    the part that is not ``component:number``."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition(":")
        try:
            share = float(value)
        except ValueError:
            share = None
        if not sep or not name or share is None:
            raise ValueError(f"composition: {part.strip()!r} is not component:share")
        if name in out:
            raise ValueError(f"composition: {name!r} given twice")
        out[name] = share
    return out


@router.get("/wte-scenario", responses=refusals(401, 403, 404, 422))
async def wte_scenario(
    state: StateDep,
    p: PrincipalDep,
    tonnes_per_day: Annotated[
        float,
        Query(gt=0, le=estimates.MAX_TONNES_PER_DAY, description="mixed waste in, wet t/day"),
    ],
    mix: Annotated[
        str | None,
        Query(max_length=40, description=f"a named composition (default {estimates.DEFAULT_MIX})"),
    ] = None,
    composition: Annotated[
        str | None,
        Query(
            max_length=400,
            description="shares by component instead of mix, e.g. food:40,plastics:19,paper:11",
        ),
    ] = None,
    efficiency: Annotated[
        float | None, Query(ge=0.05, le=0.45, description="net electrical, of LHV")
    ] = None,
    regulation: estimates.Regulation = estimates.DEFAULT_REGULATION,
    idr_per_usd: Annotated[
        int | None, Query(ge=1_000, le=100_000, description="for revenue in Rupiah")
    ] = None,
    city: CityQuery = None,
) -> estimates.WteScenario:
    """A PLTSa burning ``tonnes_per_day``: the mix's LHV as received, net electricity (MW and
    MWh a year), fossil CO2 (IPCC 2006 Vol. 5 Eq 5.2) and PLN's revenue at the regulation's
    tariff for the plant's capacity band, each low/central/high."""

    def work(_session: Session, _scope: reports.Scope) -> estimates.WteScenario:
        if mix is not None and composition is not None:
            raise ValueError("give mix or composition, not both")
        chosen = parse_composition(composition) if composition else mix or estimates.DEFAULT_MIX
        return estimates.wte_scenario(
            tonnes_per_day,
            chosen,
            efficiency=efficiency,
            regulation=regulation,
            idr_per_usd=idr_per_usd,
        )

    return await anyio.to_thread.run_sync(read_in_city, state, p, city, work)
