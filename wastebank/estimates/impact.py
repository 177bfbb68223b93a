"""What diverting waste is estimated to be worth, each figure a range and CO2e in its parts:
:func:`impact` for integer grams per material class."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from wastebank.estimates.data import EstimateData, default_data, not_modelled_reason
from wastebank.estimates.energy import thermal_energy
from wastebank.estimates.landfill import methane_avoided
from wastebank.estimates.ranges import Bound, Impact, Range, sum_impacts
from wastebank.estimates.recycling import recycling_credits
from wastebank.estimates.results import GwpSet, resolve_gwp
from wastebank.estimates.treatment import composting_emissions
from wastebank.estimates.units import (
    DEFAULT_CLIMATE,
    DEFAULT_GWP,
    DEFAULT_SITE,
    G_PER_T,
    KG_PER_T,
    KWH_PER_GJ,
    BiologicalProcess,
    Climate,
)


def impact(
    grams_by_material: Mapping[str, int],
    *,
    gwp: GwpSet | str = DEFAULT_GWP,
    site: str = DEFAULT_SITE,
    climate: Climate = DEFAULT_CLIMATE,
    organics_treatment: BiologicalProcess | None = "composting",
    data: EstimateData | None = None,
) -> Impact:
    """The :class:`Impact` of diverting ``grams_by_material`` (integer grams per material class,
    ``ledger.MaterialClass``): each figure at the three bounds. A material class the data files
    do not know raises ``UnknownMaterialError``."""
    d = data or default_data()
    g = resolve_gwp(gwp, d)
    parts = []
    for material, grams in sorted(grams_by_material.items()):
        if isinstance(grams, bool) or not isinstance(grams, int):
            raise TypeError(f"material {material!r}: grams must be an integer, got {grams!r}")
        if grams < 0:
            raise ValueError(f"material {material!r}: negative total {grams} g")
        d.check_material(material)
        parts.append(_one(material, grams, g, site, climate, organics_treatment, d))
    return sum_impacts(parts)


def _one(
    material: str,
    grams: int,
    g: GwpSet,
    site: str,
    climate: Climate,
    treatment: BiologicalProcess | None,
    d: EstimateData,
) -> Impact:
    t = {material: grams / G_PER_T}
    why: dict[str, str] = {}

    def kg(compute: Callable[[Bound], float]) -> Range:
        return Range.of(lambda b: compute(b) * KG_PER_T)

    landfill = kg(
        lambda b: (
            methane_avoided(t, 1, g, site=site, climate=climate, bound=b, data=d).lifetime_co2e_t
        )
    )
    treatable = d.ipcc.materials[material] in d.ipcc.lists.get("biologically_treatable", [])
    composting = (
        kg(lambda b: composting_emissions(t, g, process=treatment, bound=b, data=d).co2e_t)
        if treatment is not None and treatable
        else Range.exact(0.0)
    )
    credit: Range | None = None
    saved_gj: Range | None = None
    if material in d.warm.materials:
        credit = kg(lambda b: recycling_credits(t, bound=b, data=d).co2e_avoided_t)
    else:
        why["recycling_credit_co2e_kg"] = not_modelled_reason(
            material, d.warm.not_modelled[material]
        )
    if material in d.recycling_energy.materials and material in d.warm.materials:
        saved_gj = Range.of(lambda b: recycling_credits(t, bound=b, data=d).energy_saved_gj)
    else:
        reason = d.recycling_energy.not_modelled.get(material) or d.warm.not_modelled[material]
        why["recycling_energy_saved_gj"] = not_modelled_reason(material, reason)
        why["recycling_energy_saved_kwh_eq"] = why["recycling_energy_saved_gj"]
    wte: Range | None = None
    if material in d.energy.materials:
        only = {material: 1.0}
        wte = Range.of(lambda b: thermal_energy(t[material], only, bound=b, data=d).electric_kwh)
    else:
        why["wte_potential_kwh"] = not_modelled_reason(material, d.energy.not_modelled[material])
    return Impact(
        grams=grams,
        net_co2e_kg=landfill + (credit or Range.exact(0.0)) - composting,
        landfill_ch4_co2e_kg=landfill,
        recycling_credit_co2e_kg=credit,
        composting_co2e_kg=composting,
        recycling_energy_saved_gj=saved_gj,
        recycling_energy_saved_kwh_eq=None if saved_gj is None else saved_gj.scaled(KWH_PER_GJ),
        wte_potential_kwh=wte,
        not_estimated=why,
    )
