"""GHG and energy avoided by recycling, per US EPA WARM's recycling pathway."""

from __future__ import annotations

from collections.abc import Mapping

from wastebank.estimates.data import EstimateData, default_data
from wastebank.estimates.ranges import Bound, flip
from wastebank.estimates.results import Estimate, Result, check_tonnes, data_ref
from wastebank.estimates.units import GJ_PER_MMBTU, SHORT_TON_T


class RecyclingMaterial(Result):
    material: str
    warm_material: str
    tonnes: float
    short_tons: float
    ef_t_co2e_per_short_ton: float  # WARM recycling factor, negative = reduction
    co2e_avoided_t: float  # -EF x short tons
    energy_saved_gj: float | None  # None: no energy-savings factor for this material
    energy_saved_mmbtu: float | None


class RecyclingResult(Estimate):
    """GHG (t CO2e) and energy avoided by recycling, per WARM's recycling pathway. US-basis:
    label it "indicative (US EPA WARM)" in Indonesian reports."""

    label: str = "indicative (US EPA WARM)"
    by_material: dict[str, RecyclingMaterial]
    co2e_avoided_t: float
    energy_saved_gj: float
    energy_saved_mmbtu: float
    not_estimated: dict[str, str]  # material -> why it has no factor


def recycling_credits(
    tonnes_by_material: Mapping[str, float],
    *,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> RecyclingResult:
    """Emissions and energy avoided by recycling ``tonnes_by_material`` (metric t). WARM factors
    are per short ton: short tons = t / 0.90718474. ``bound``: the low (or high) credit and
    energy saved (a factor's low end is its most negative, so the credit's low takes its high)."""
    d = data or default_data()
    check_tonnes(tonnes_by_material, d)
    warm, re = d.warm, d.recycling_energy
    ghg = warm.table("recycling_ghg", flip(bound))
    per_short_ton = re.table("energy_saved_per_short_ton", bound)
    per_kg, yields = re.table("energy_saved_per_kg", bound), re.table("recycling_yield", bound)
    by_material: dict[str, RecyclingMaterial] = {}
    not_estimated: dict[str, str] = {}
    re_sources: set[str] = set()
    for material, tonnes in sorted(tonnes_by_material.items()):
        key = warm.materials.get(material)
        if key is None:
            not_estimated[material] = warm.not_modelled[material]
            continue
        short_tons = tonnes / SHORT_TON_T
        ef = ghg[key]
        gj: float | None = None
        energy_key = re.materials.get(material)
        if energy_key in per_short_ton:
            gj = per_short_ton[energy_key] * short_tons * GJ_PER_MMBTU
            re_sources.add(re.tables["energy_saved_per_short_ton"].source)
        elif energy_key in per_kg:
            # MJ/kg = GJ/t
            gj = per_kg[energy_key] * tonnes * yields.get(energy_key, 1.0)
            re_sources.add(re.tables["energy_saved_per_kg"].source)
            if energy_key in yields:
                re_sources.add(re.tables["recycling_yield"].source)
        by_material[material] = RecyclingMaterial(
            material=material,
            warm_material=key,
            tonnes=tonnes,
            short_tons=short_tons,
            ef_t_co2e_per_short_ton=ef,
            co2e_avoided_t=-ef * short_tons,
            energy_saved_gj=gj,
            energy_saved_mmbtu=None if gj is None else gj / GJ_PER_MMBTU,
        )
    total_gj = sum(m.energy_saved_gj or 0.0 for m in by_material.values())
    provenance = [data_ref(warm, [warm.tables["recycling_ghg"].source])]
    if re_sources:
        provenance.append(data_ref(re, re_sources))
    return RecyclingResult(
        method="US EPA WARM recycling factors (t CO2e/short ton, converted to metric t)",
        provenance=tuple(provenance),
        by_material=by_material,
        co2e_avoided_t=sum(m.co2e_avoided_t for m in by_material.values()),
        energy_saved_gj=total_gj,
        energy_saved_mmbtu=total_gj / GJ_PER_MMBTU,
        not_estimated=not_estimated,
    )
