"""Energy in residual waste: burned (lower heating value x mass x efficiency) or digested (biogas
from food waste, the BMP route capped by the IPCC DOC ceiling)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from wastebank.estimates.data import EstimateData, default_data
from wastebank.estimates.ranges import Bound, flip
from wastebank.estimates.results import DataRef, Estimate, Result, check_tonnes, data_ref
from wastebank.estimates.units import (
    CH4_PER_C,
    KG_PER_T,
    MJ_PER_KWH,
    SECONDS_PER_DAY,
    WATER_PER_HYDROGEN,
)


class ThermalEnergy(Estimate):
    tonnes: float
    mix: dict[str, float]  # material -> mass fraction (normalised to sum 1)
    lhv_mj_per_kg: float  # as received, of the mix
    efficiency: float  # net electrical
    thermal_kwh: float
    electric_kwh: float


class ThermalPower(Estimate):
    tonnes_per_day: float
    mix: dict[str, float]
    lhv_mj_per_kg: float
    efficiency: float
    thermal_mw: float  # average, at steady throughput
    electric_mw: float


def lower_heating_value(
    material: str, *, bound: Bound = "central", data: EstimateData | None = None
) -> float:
    """LHV as received of a material class, MJ/kg: :func:`component_lhv` of its energy
    component (energy.toml ``[materials]``)."""
    d = data or default_data()
    d.check_material(material)
    e = d.energy
    key = e.materials.get(material)
    if key is None:
        raise ValueError(f"no heating value for {material!r}: {e.not_modelled[material]}")
    return component_lhv(key, bound=bound, data=d)


def component_lhv(
    component: str, *, bound: Bound = "central", data: EstimateData | None = None
) -> float:
    """LHV as received of an energy component (a key of energy.toml's heating-value tables),
    MJ/kg: HHV_ar - L x (w + 8.94 x H_dry x (1 - w)), where HHV_ar = HHV_ad x (1 - w) / (1 - w_ad)
    carries the heating value as discarded (taken at moisture w_ad) to the Indonesian moisture w
    on a dry basis; H_dry is the dry-basis hydrogen and L the latent heat of water. ``bound``
    "low": HHV at its low end, moisture and hydrogen at their high ends ("high" the other way)."""
    e = (data or default_data()).energy
    against = flip(bound)
    w, h = e.table("moisture", against)[component], e.table("hydrogen_dry", against)[component]
    latent = e.coefficient("water_latent_heat", against)
    w_ad = e.table("moisture_as_discarded", bound)[component]
    hhv = e.table("hhv_as_discarded", bound)[component] * (1.0 - w) / (1.0 - w_ad)
    return hhv - latent * (w + WATER_PER_HYDROGEN * h * (1.0 - w))


LHV_TABLES = ("hhv_as_discarded", "moisture_as_discarded", "moisture", "hydrogen_dry")


def _mix_lhv(
    material_mix: Mapping[str, float], efficiency: float | None, d: EstimateData, bound: Bound
) -> tuple[dict[str, float], float, float, tuple[DataRef, ...]]:
    check_tonnes(material_mix, d)
    total = sum(material_mix.values())
    if not (math.isfinite(total) and total > 0):  # shares of 1e308 each sum to inf
        raise ValueError("material_mix must have a positive total that is finite")
    mix = {m: share / total for m, share in sorted(material_mix.items()) if share > 0}
    lhv = sum(share * lower_heating_value(m, bound=bound, data=d) for m, share in mix.items())
    e = d.energy
    eta = (
        e.coefficient("wte_net_electrical_efficiency", bound) if efficiency is None else efficiency
    )
    if not 0.0 <= eta <= 1.0:
        raise ValueError("efficiency must be within 0..1")
    sources = [source for n in LHV_TABLES for source in e.tables[n].sources] + [
        e.coefficients["water_latent_heat"].source
    ]
    if efficiency is None:
        sources.append(e.coefficients["wte_net_electrical_efficiency"].source)
    return mix, lhv, eta, (data_ref(e, sources),)


def thermal_energy(
    tonnes: float,
    material_mix: Mapping[str, float],
    *,
    efficiency: float | None = None,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> ThermalEnergy:
    """Energy in ``tonnes`` (wet t) of residual waste of ``material_mix`` (shares by mass, any
    scale: normalised): thermal kWh = t x 1000 x LHV / 3.6; electric kWh = thermal x efficiency."""
    d = data or default_data()
    if not (math.isfinite(tonnes) and tonnes >= 0):
        raise ValueError("tonnes must be finite and >= 0")
    mix, lhv, eta, refs = _mix_lhv(material_mix, efficiency, d, bound)
    thermal_kwh = tonnes * KG_PER_T * lhv / MJ_PER_KWH
    return ThermalEnergy(
        method="LHV (as received) x mass x net electrical efficiency",
        provenance=refs,
        tonnes=tonnes,
        mix=mix,
        lhv_mj_per_kg=lhv,
        efficiency=eta,
        thermal_kwh=thermal_kwh,
        electric_kwh=thermal_kwh * eta,
    )


def thermal_power(
    tonnes_per_day: float,
    material_mix: Mapping[str, float],
    *,
    efficiency: float | None = None,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> ThermalPower:
    """Average power of a plant burning ``tonnes_per_day``: MW = t/d x 1000 x LHV / 86,400."""
    d = data or default_data()
    if not (math.isfinite(tonnes_per_day) and tonnes_per_day >= 0):
        raise ValueError("tonnes_per_day must be finite and >= 0")
    mix, lhv, eta, refs = _mix_lhv(material_mix, efficiency, d, bound)
    thermal_mw = tonnes_per_day * KG_PER_T * lhv / SECONDS_PER_DAY
    return ThermalPower(
        method="LHV (as received) x throughput x net electrical efficiency",
        provenance=refs,
        tonnes_per_day=tonnes_per_day,
        mix=mix,
        lhv_mj_per_kg=lhv,
        efficiency=eta,
        thermal_mw=thermal_mw,
        electric_mw=thermal_mw * eta,
    )


# ---- biogas (anaerobic digestion of food waste) ----------------------------------------------


class BiogasMaterial(Result):
    material: str
    tonnes: float
    ch4_nm3_bmp: float  # m x TS x VS/TS x BMP
    ch4_nm3_ceiling: float  # m x DOC x DOCf x F x 16/12 / density
    ch4_nm3: float  # the smaller of the two
    capped: bool


class BiogasResult(Estimate):
    by_material: dict[str, BiogasMaterial]
    ch4_nm3: float
    ch4_t: float
    energy_kwh: float  # CH4 LHV content
    electric_kwh: float  # at the CHP electrical efficiency
    not_estimated: dict[str, str]


def biogas_energy(
    tonnes_by_material: Mapping[str, float],
    *,
    electrical_efficiency: float | None = None,
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> BiogasResult:
    """CH4 and energy from digesting ``tonnes_by_material`` (fresh t): the BMP route, capped by
    the IPCC DOC ceiling; materials without solids data are listed in ``not_estimated``."""
    d = data or default_data()
    check_tonnes(tonnes_by_material, d)
    e, ipcc = d.energy, d.ipcc
    ts, vs = e.table("total_solids", bound), e.table("vs_per_ts", bound)
    bmp, density = e.coefficient("bmp", bound), e.coefficient("ch4_density", flip(bound))
    ceiling_docf, f = e.coefficient("biogas_ceiling_docf", bound), ipcc.coefficient("f", bound)
    doc_table = ipcc.table("doc", bound)
    eta = (
        e.coefficient("chp_electrical_efficiency", bound)
        if electrical_efficiency is None
        else (electrical_efficiency)
    )
    by_material: dict[str, BiogasMaterial] = {}
    not_estimated: dict[str, str] = {}
    for material, tonnes in sorted(tonnes_by_material.items()):
        key = e.materials.get(material)
        if key is None or key not in ts or key not in vs:
            not_estimated[material] = "no biomethane-potential data for this material"
            continue
        by_bmp = tonnes * KG_PER_T * ts[key] * vs[key] * bmp
        doc = doc_table[ipcc.materials[material]]
        ceiling = tonnes * doc * ceiling_docf * f * CH4_PER_C * KG_PER_T / density
        by_material[material] = BiogasMaterial(
            material=material,
            tonnes=tonnes,
            ch4_nm3_bmp=by_bmp,
            ch4_nm3_ceiling=ceiling,
            ch4_nm3=min(by_bmp, ceiling),
            capped=ceiling < by_bmp,
        )
    nm3 = sum(m.ch4_nm3 for m in by_material.values())
    energy_kwh = nm3 * e.coefficient("ch4_lhv", bound) / MJ_PER_KWH
    sources = [
        e.coefficients[c].source
        for c in (
            "bmp",
            "ch4_density",
            "ch4_lhv",
            "chp_electrical_efficiency",
            "biogas_ceiling_docf",
        )
    ] + [e.tables["total_solids"].source]
    return BiogasResult(
        method="BMP x VS, capped by IPCC DOC x DOCf x F x 16/12; CH4 LHV x CHP efficiency",
        provenance=(
            data_ref(e, sources),
            data_ref(ipcc, [ipcc.tables["doc"].source, ipcc.coefficients["f"].source]),
        ),
        by_material=by_material,
        ch4_nm3=nm3,
        ch4_t=nm3 * density / KG_PER_T,
        energy_kwh=energy_kwh,
        electric_kwh=energy_kwh * eta,
        not_estimated=not_estimated,
    )
