"""Every estimate for ledger totals: integer grams per category code, through each category's
material class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from wastebank.estimates.data import EstimateData, UnknownMaterialError, default_data
from wastebank.estimates.landfill import FodResult, methane_avoided
from wastebank.estimates.recycling import RecyclingResult, recycling_credits
from wastebank.estimates.results import GwpSet, Result, resolve_gwp
from wastebank.estimates.treatment import BiologicalResult, composting_emissions
from wastebank.estimates.units import (
    DEFAULT_CLIMATE,
    DEFAULT_GWP,
    DEFAULT_SITE,
    G_PER_T,
    BiologicalProcess,
    Climate,
)


class CategoryEstimate(Result):
    """Estimates for ledger totals. ``co2e_avoided_t`` = lifetime landfill CH4 avoided (IPCC FOD,
    chosen GWP) + recycling credit (WARM, as published) - composting/digestion emissions of the
    diverted organics. WARM's own landfill factors are not used, so landfill CH4 is not counted
    twice."""

    basis: Literal["estimated"] = "estimated"
    grams_by_category: dict[str, int]
    tonnes_by_material: dict[str, float]
    methane: FodResult
    recycling: RecyclingResult
    treatment: BiologicalResult | None  # organics (IPCC treatable waste types), if treated
    co2e_avoided_t: float


def tonnes_by_material(
    grams_by_category: Mapping[str, int],
    material_of: Mapping[str, str],
    *,
    data: EstimateData | None = None,
) -> dict[str, float]:
    """Ledger grams per category code -> tonnes per material class (t = g / 1,000,000)."""
    d = data or default_data()
    out: dict[str, float] = {}
    for category, grams in sorted(grams_by_category.items()):
        if isinstance(grams, bool) or not isinstance(grams, int):
            raise TypeError(f"category {category!r}: grams must be an integer, got {grams!r}")
        if grams < 0:
            raise ValueError(f"category {category!r}: negative total {grams} g")
        material = material_of.get(category)
        if material is None:
            raise UnknownMaterialError("(none)", category, d.materials)
        d.check_material(material, category)
        out[material] = out.get(material, 0.0) + grams / G_PER_T
    return out


def estimate_for_categories(
    grams_by_category: Mapping[str, int],
    material_of: Mapping[str, str],
    *,
    years: int,
    gwp: GwpSet | str = DEFAULT_GWP,
    site: str = DEFAULT_SITE,
    climate: Climate = DEFAULT_CLIMATE,
    organics_treatment: BiologicalProcess | None = "composting",
    data: EstimateData | None = None,
) -> CategoryEstimate:
    """All estimates for ledger totals: ``grams_by_category`` (integer grams per category code,
    one diversion year) and ``material_of`` (category code -> material class, e.g.
    ``{c.code: c.material_class for c in session.scalars(select(Category))}``)."""
    d = data or default_data()
    g = resolve_gwp(gwp, d)
    tonnes = tonnes_by_material(grams_by_category, material_of, data=d)
    methane = methane_avoided(tonnes, years, g, site=site, climate=climate, data=d)
    recycling = recycling_credits(tonnes, data=d)
    treatable = set(d.ipcc.lists.get("biologically_treatable", []))
    organics = {m: t for m, t in tonnes.items() if d.ipcc.materials[m] in treatable}
    treatment = None
    if organics_treatment is not None and organics:
        treatment = composting_emissions(organics, g, process=organics_treatment, data=d)
    return CategoryEstimate(
        grams_by_category=dict(grams_by_category),
        tonnes_by_material=tonnes,
        methane=methane,
        recycling=recycling,
        treatment=treatment,
        co2e_avoided_t=methane.lifetime_co2e_t
        + recycling.co2e_avoided_t
        - (treatment.co2e_t if treatment else 0.0),
    )
