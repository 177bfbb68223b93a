"""Energy and emission estimates for diverted and residual waste .

Every figure here is *estimated* from published default coefficients, never measured: each result
says so (``basis = "estimated"``) and names the data files (id and version) and the source ids it
used. The coefficients live in versioned TOML files under ``wastebank/data/estimates/`` with a
value, a unit and a cited source each; :func:`load_estimate_data` refuses a file whose coefficient
lacks a known source or carries an unexpected unit. The equations, assumptions and a worked example
are in ``docs/estimates.md``.

Estimates are per *material class* (``wastebank.ledger.MaterialClass``): a category reaches its
factors through its material class, so a new category needs only its row in the ledger, and a new
material class needs only a line in each data file. :func:`estimate_for_categories` takes ledger
totals (integer grams per category code) and a plain ``category code -> material class`` mapping,
so this package never touches the database.

Units: masses in metric tonnes (t) unless a name says otherwise; CO2e in t; energy in kWh or GJ;
power in MW; gas volumes in Nm3 (0 C, 101.325 kPa).

Every coefficient has a range (the source's, else its confidence tag's) and every computation
takes ``bound="low" | "central" | "high"``; :class:`Range` carries a figure at the three, central
first (docs/estimates.md, "Uncertainty").

The modules: :mod:`.data` (the coefficient files, loaded and checked), :mod:`.units`,
:mod:`.ranges` (:class:`Range`, :class:`Impact` and what each figure is), :mod:`.results` (what
every estimate carries; the GWP sets), and the computations :mod:`.landfill` (IPCC first-order
decay), :mod:`.recycling` (US EPA WARM), :mod:`.energy` (heating values, waste-to-energy,
biogas), :mod:`.treatment` (composting emissions), :mod:`.categories` (all of them for ledger
totals), :mod:`.impact` (every figure as a range for grams per material class) and :mod:`.wte`
(a PLTSa scenario: electricity, fossil CO2, tariff and revenue). Their public names are this
package's.
"""

from wastebank.estimates.categories import (
    CategoryEstimate,
    estimate_for_categories,
    tonnes_by_material,
)
from wastebank.estimates.data import (
    DATA_DIR,
    DEFAULT_FILES,
    MATERIAL_NAMES,
    Coefficient,
    Confidence,
    DataFile,
    EstimateData,
    EstimateDataError,
    FileKind,
    Meta,
    Source,
    Table,
    UnknownMaterialError,
    default_data,
    load_data_file,
    load_estimate_data,
    not_modelled_reason,
)
from wastebank.estimates.energy import (
    BiogasMaterial,
    BiogasResult,
    ThermalEnergy,
    ThermalPower,
    biogas_energy,
    component_lhv,
    lower_heating_value,
    thermal_energy,
    thermal_power,
)
from wastebank.estimates.impact import impact
from wastebank.estimates.landfill import (
    FodMaterial,
    FodResult,
    FodYear,
    methane_avoided,
    methane_avoided_series,
)
from wastebank.estimates.ranges import (
    BOUNDS,
    FIGURES,
    IMPACT_FIELDS,
    Bound,
    Figure,
    Impact,
    Range,
    Text,
    sum_impacts,
)
from wastebank.estimates.recycling import RecyclingMaterial, RecyclingResult, recycling_credits
from wastebank.estimates.results import DataRef, Estimate, GwpSet, data_ref, gwp_set
from wastebank.estimates.treatment import BiologicalResult, composting_emissions
from wastebank.estimates.units import (
    CH4_PER_C,
    DEFAULT_CLIMATE,
    DEFAULT_GWP,
    DEFAULT_SITE,
    G_PER_T,
    GJ_PER_MMBTU,
    KG_PER_T,
    KWH_PER_GJ,
    MJ_PER_KWH,
    SECONDS_PER_DAY,
    SHORT_TON_T,
    WATER_PER_HYDROGEN,
    BiologicalProcess,
    Climate,
)
from wastebank.estimates.wte import (
    DEFAULT_MIX,
    DEFAULT_REGULATION,
    MAX_TONNES_PER_DAY,
    Regulation,
    RupiahRange,
    Tariff,
    WteScenario,
    mixes,
    wte_scenario,
)

__all__ = [
    "data_ref",
    "component_lhv",
    "wte_scenario",
    "mixes",
    "WteScenario",
    "Tariff",
    "RupiahRange",
    "Regulation",
    "MAX_TONNES_PER_DAY",
    "DEFAULT_REGULATION",
    "DEFAULT_MIX",
    "KWH_PER_GJ",
    "impact",
    "not_modelled_reason",
    "MATERIAL_NAMES",
    "sum_impacts",
    "Text",
    "Range",
    "Impact",
    "Figure",
    "Bound",
    "IMPACT_FIELDS",
    "FIGURES",
    "BOUNDS",
    "BiogasMaterial",
    "BiogasResult",
    "BiologicalProcess",
    "BiologicalResult",
    "CH4_PER_C",
    "CategoryEstimate",
    "Climate",
    "Coefficient",
    "Confidence",
    "DATA_DIR",
    "DEFAULT_CLIMATE",
    "DEFAULT_FILES",
    "DEFAULT_GWP",
    "DEFAULT_SITE",
    "DataFile",
    "DataRef",
    "Estimate",
    "EstimateData",
    "EstimateDataError",
    "FileKind",
    "FodMaterial",
    "FodResult",
    "FodYear",
    "GJ_PER_MMBTU",
    "G_PER_T",
    "GwpSet",
    "KG_PER_T",
    "MJ_PER_KWH",
    "Meta",
    "RecyclingMaterial",
    "RecyclingResult",
    "SECONDS_PER_DAY",
    "SHORT_TON_T",
    "Source",
    "Table",
    "ThermalEnergy",
    "ThermalPower",
    "UnknownMaterialError",
    "WATER_PER_HYDROGEN",
    "biogas_energy",
    "composting_emissions",
    "default_data",
    "estimate_for_categories",
    "gwp_set",
    "load_data_file",
    "load_estimate_data",
    "lower_heating_value",
    "methane_avoided",
    "methane_avoided_series",
    "recycling_credits",
    "thermal_energy",
    "thermal_power",
    "tonnes_by_material",
]
