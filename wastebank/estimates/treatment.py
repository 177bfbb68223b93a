"""CH4 and N2O emitted by composting or digesting organics (IPCC 2006 Table 4.1)."""

from __future__ import annotations

from collections.abc import Mapping

from wastebank.estimates.data import EstimateData, default_data
from wastebank.estimates.ranges import Bound
from wastebank.estimates.results import Estimate, GwpSet, check_tonnes, data_ref, resolve_gwp
from wastebank.estimates.units import DEFAULT_GWP, KG_PER_T, BiologicalProcess


class BiologicalResult(Estimate):
    process: str
    gwp: str
    tonnes: float
    ch4_t: float
    n2o_t: float
    co2e_t: float


def composting_emissions(
    tonnes_by_material: Mapping[str, float],
    gwp: GwpSet | str = DEFAULT_GWP,
    *,
    process: BiologicalProcess = "composting",
    bound: Bound = "central",
    data: EstimateData | None = None,
) -> BiologicalResult:
    """CH4 and N2O emitted by composting (or digesting) ``tonnes_by_material`` (wet t): IPCC 2006
    Eq 4.1/4.2 with Table 4.1 factors, g per kg wet = kg per t; t gas = t x factor / 1000."""
    d = data or default_data()
    g = resolve_gwp(gwp, d)
    check_tonnes(tonnes_by_material, d)
    ipcc = d.ipcc
    treatable = set(ipcc.lists.get("biologically_treatable", []))
    for material in tonnes_by_material:
        if ipcc.materials[material] not in treatable:
            raise ValueError(
                f"material class {material!r} ({ipcc.materials[material]}) is not "
                f"biologically treatable; treatable waste types: {', '.join(sorted(treatable))}"
            )
    tonnes = sum(tonnes_by_material.values())
    ch4 = tonnes * ipcc.table("bio_ch4", bound)[process] / KG_PER_T
    n2o = tonnes * ipcc.table("bio_n2o", bound)[process] / KG_PER_T
    return BiologicalResult(
        method=f"IPCC 2006 Vol. 5 Ch. 4 Table 4.1 default factors ({process})",
        provenance=(data_ref(ipcc, [ipcc.tables["bio_ch4"].source]), g.ref),
        process=process,
        gwp=g.name,
        tonnes=tonnes,
        ch4_t=ch4,
        n2o_t=n2o,
        co2e_t=ch4 * g.ch4 + n2o * g.n2o,
    )
