"""Landfill methane that diverted waste would have emitted at the TPA (so: avoided), by IPCC 2006
first-order decay."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from wastebank.estimates.data import EstimateData, default_data
from wastebank.estimates.ranges import Bound, flip
from wastebank.estimates.results import (
    Estimate,
    GwpSet,
    Result,
    check_tonnes,
    data_ref,
    resolve_gwp,
)
from wastebank.estimates.units import (
    CH4_PER_C,
    DEFAULT_CLIMATE,
    DEFAULT_GWP,
    DEFAULT_SITE,
    Climate,
)


class FodYear(Result):
    year: int  # years after the (first) diversion year: 1..N
    ch4_t: float
    co2e_t: float


class FodMaterial(Result):
    material: str
    waste_type: str  # IPCC Table 2.4 component
    tonnes: float
    doc: float
    k_per_yr: float
    ddocm_t: float  # Eq 3.2: W x DOC x DOCf x MCF
    lifetime_ch4_t: float  # Eq 3.3 x (1 - R) x (1 - OX)


class FodResult(Estimate):
    """Landfill CH4 that the diverted waste would have emitted at the TPA (so: avoided)."""

    gwp: str
    site: str
    climate: str
    mcf: float
    ox: float
    recovery_fraction: float
    years: tuple[FodYear, ...]
    by_material: dict[str, FodMaterial]
    lifetime_ch4_t: float  # committed: everything the diverted DDOCm would ever emit
    lifetime_co2e_t: float
    series_ch4_t: float  # sum of ``years``
    remaining_ch4_t: float  # emitted after year N: lifetime - series


def methane_avoided(
    tonnes_by_material: Mapping[str, float],
    years: int,
    gwp: GwpSet | str = DEFAULT_GWP,
    *,
    site: str = DEFAULT_SITE,
    climate: Climate = DEFAULT_CLIMATE,
    oxidation: str = "default",
    recovery_fraction: float = 0.0,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> FodResult:
    """Landfill CH4 avoided by diverting ``tonnes_by_material`` (wet t) in one year: the annual
    series for years 1..``years`` after it and the lifetime figure (IPCC 2006 Vol. 5 Eq 3.1-3.6).
    ``bound``: every coefficient at the end of its range that gives the low (or high) figure."""
    return methane_avoided_series(
        [tonnes_by_material],
        years,
        gwp,
        site=site,
        climate=climate,
        oxidation=oxidation,
        recovery_fraction=recovery_fraction,
        bound=bound,
        data=data,
    )


def methane_avoided_series(
    tonnes_by_year: Sequence[Mapping[str, float]],
    years: int,
    gwp: GwpSet | str = DEFAULT_GWP,
    *,
    site: str = DEFAULT_SITE,
    climate: Climate = DEFAULT_CLIMATE,
    oxidation: str = "default",
    recovery_fraction: float = 0.0,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> FodResult:
    """As :func:`methane_avoided`, for diversions in successive years: ``tonnes_by_year[i]`` is
    diverted in year i (year 0 is the first). Waste diverted in year i would have started to decay
    on 1 January of year i + 1, as Eq 3.4/3.5 are printed; the series is years 1..``years``."""
    d = data or default_data()
    g = resolve_gwp(gwp, d)
    if years < 1:
        raise ValueError("years must be >= 1")
    if not 0.0 <= recovery_fraction <= 1.0:
        raise ValueError("recovery_fraction must be within 0..1")
    ipcc = d.ipcc
    mcf_table, ox_table = ipcc.table("mcf", bound), ipcc.table("ox", flip(bound))
    if site not in mcf_table:
        raise ValueError(f"unknown site type {site!r}; known: {', '.join(sorted(mcf_table))}")
    if oxidation not in ox_table:
        raise ValueError(f"unknown oxidation {oxidation!r}; known: {', '.join(sorted(ox_table))}")
    k_table, doc_table = ipcc.table(f"k_{climate}", bound), ipcc.table("doc", bound)
    for year in tonnes_by_year:
        check_tonnes(year, d)
    docf, f, mcf, ox = (
        ipcc.coefficient("docf", bound),
        ipcc.coefficient("f", bound),
        mcf_table[site],
        ox_table[oxidation],
    )
    # CH4 emitted per t of DDOCm decomposed: Eq 3.6 (F x 16/12), then Eq 3.1 (- R, x (1 - OX)).
    ch4_per_ddocm = f * CH4_PER_C * (1.0 - recovery_fraction) * (1.0 - ox)

    series = [0.0] * years
    by_material: dict[str, FodMaterial] = {}
    materials = sorted({m for year in tonnes_by_year for m in year})
    for material in materials:
        waste_type = ipcc.materials[material]
        doc, k = doc_table[waste_type], k_table[waste_type]
        deposited = [year.get(material, 0.0) * doc * docf * mcf for year in tonnes_by_year]
        accumulated = 0.0  # DDOCma at the end of the previous year
        for t in range(years + 1):
            decomposed = accumulated * (1.0 - math.exp(-k))  # Eq 3.5
            accumulated = (deposited[t] if t < len(deposited) else 0.0) + accumulated * math.exp(
                -k
            )  # Eq 3.4
            if t >= 1:
                series[t - 1] += decomposed * ch4_per_ddocm
        total_t = sum(year.get(material, 0.0) for year in tonnes_by_year)
        by_material[material] = FodMaterial(
            material=material,
            waste_type=waste_type,
            tonnes=total_t,
            doc=doc,
            k_per_yr=k,
            ddocm_t=sum(deposited),
            lifetime_ch4_t=sum(deposited) * ch4_per_ddocm,
        )
    lifetime = sum(m.lifetime_ch4_t for m in by_material.values())
    series_sum = sum(series)
    return FodResult(
        method="IPCC 2006 Vol. 5 Ch. 3 first-order decay, default parameters",
        provenance=(
            data_ref(
                ipcc,
                [
                    ipcc.coefficients["docf"].source,
                    ipcc.coefficients["f"].source,
                    *(ipcc.tables[t].source for t in ("doc", "mcf", "ox", f"k_{climate}")),
                ],
            ),
            g.ref,
        ),
        gwp=g.name,
        site=site,
        climate=climate,
        mcf=mcf,
        ox=ox,
        recovery_fraction=recovery_fraction,
        years=tuple(
            FodYear(year=i + 1, ch4_t=ch4, co2e_t=ch4 * g.ch4) for i, ch4 in enumerate(series)
        ),
        by_material=by_material,
        lifetime_ch4_t=lifetime,
        lifetime_co2e_t=lifetime * g.ch4,
        series_ch4_t=series_sum,
        remaining_ch4_t=max(lifetime - series_sum, 0.0),
    )
