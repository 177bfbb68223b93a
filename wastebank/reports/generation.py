"""The city's waste generation estimate (population x kg per person per day) and the targets
(``[reports]`` settings), and the estimator of CO2e avoided and energy potential
(:mod:`wastebank.estimates`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from wastebank.errors import SetupError

DEMO_CITY_FILE = Path(__file__).parent.parent / "data" / "demo_city.toml"


# ---- settings and the generation estimate -------------------------------------------------------


class ReportSettings(BaseModel):
    """``[reports]`` (environment ``WASTEBANK_REPORTS__*``): the city's generation estimate and
    the targets. Unset population/rate: taken from ``generation_file`` (default: the demo city
    file's ``[generation]`` section, for the city whose code it names)."""

    population: int | None = Field(default=None, gt=0, description="the city's population")
    kg_per_capita_day: float | None = Field(
        default=None, gt=0, le=5, description="waste generation, kg per person per day"
    )
    source: str | None = Field(default=None, description="where the two figures come from")
    generation_file: Path | None = Field(
        default=None, description="TOML with [city] code and [generation] (demo_city.toml's shape)"
    )
    reduction_target_pct: float = Field(
        default=30.0, ge=0, le=100, description="Jakstrada pengurangan target (2025: 30 %)"
    )
    handling_target_pct: float = Field(
        default=70.0, ge=0, le=100, description="Jakstrada penanganan target (2025: 70 %)"
    )


class Generation(BaseModel):
    """Waste generation (timbulan) estimate: population x kg per person per day."""

    city_code: str
    population: int
    population_year: int | None = None
    kg_per_capita_day: float
    source: str
    basis: Literal["estimated"] = "estimated"

    def grams(self, days: int) -> int:
        return round(self.population * self.kg_per_capita_day * 1000 * days)


class NoGenerationEstimate(SetupError, LookupError):
    """No population / generation rate is configured for the city."""


def generation_for(city_code: str, settings: ReportSettings | None = None) -> Generation:
    """The city's generation estimate: settings first, then the data file's ``[generation]``."""
    s = settings or ReportSettings()
    data: dict[str, Any] = {}
    path = s.generation_file or DEMO_CITY_FILE
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    if doc.get("city", {}).get("code") == city_code:
        data = dict(doc.get("generation", {}))
    population = s.population or data.get("population")
    rate = s.kg_per_capita_day or data.get("kg_per_capita_day")
    if population is None or rate is None:
        raise NoGenerationEstimate(
            f"no generation estimate for city {city_code!r}: set WASTEBANK_REPORTS__POPULATION "
            "and WASTEBANK_REPORTS__KG_PER_CAPITA_DAY (or a [generation] section)"
        )
    overridden = s.population is not None or s.kg_per_capita_day is not None
    source = s.source or ("settings" if overridden else str(data.get("source", path.name)))
    return Generation(
        city_code=city_code,
        population=int(population),
        population_year=None if overridden else data.get("population_year"),
        kg_per_capita_day=float(rate),
        source=source,
    )


# ---- estimates (CO2e avoided, energy potential): wastebank/estimates/ -------------------------


class Estimator(Protocol):
    """Per material class (``ledger.MaterialClass``) and diverted grams; None when the material
    has no factor. ``wastebank.estimates`` provides the real one."""

    name: str

    def co2e_avoided_kg(self, material_class: str, grams: int) -> float | None: ...

    def energy_kwh(self, material_class: str, grams: int) -> float | None: ...


def default_estimator() -> Estimator | None:
    """The estimator of ``wastebank.estimates`` when that module is installed, else None (the
    report then leaves CO2e and energy blank and says so)."""
    import importlib.util

    if importlib.util.find_spec("wastebank.estimates") is None:
        return None
    return _wire_estimates()


def _wire_estimates() -> Estimator | None:
    return EstimatesAdapter()


class EstimatesAdapter:
    """:class:`Estimator` over ``wastebank.estimates``: CO2e avoided = its
    ``estimate_for_categories`` (lifetime landfill CH4 avoided by IPCC FOD + WARM recycling
    credit - composting emissions of organics, AR5); energy potential = net electric kWh of the
    material's lower heating value at the default waste-to-energy efficiency
    (``thermal_energy``). A material without a factor gives None (left blank)."""

    name = (
        "wastebank.estimates: CO2e = CH4 TPA terhindar (IPCC FOD) + kredit daur ulang (US EPA "
        "WARM, indikatif) / landfill CH4 avoided + recycling credit; energi = listrik bersih dari "
        "LHV / energy = net electric from LHV"
    )

    def co2e_avoided_kg(self, material_class: str, grams: int) -> float | None:
        from wastebank import estimates

        if grams <= 0:
            return 0.0
        try:
            est = estimates.estimate_for_categories({"c": grams}, {"c": material_class}, years=1)
        except ValueError:
            return None
        return est.co2e_avoided_t * 1000

    def energy_kwh(self, material_class: str, grams: int) -> float | None:
        from wastebank import estimates

        if grams <= 0:
            return 0.0
        try:
            return estimates.thermal_energy(grams / 1_000_000, {material_class: 1.0}).electric_kwh
        except ValueError:
            return None
