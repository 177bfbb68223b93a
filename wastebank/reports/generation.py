"""The city's waste generation estimate (population x kg per person per day, from the city's
data file), its TPS count, the targets (``[reports]`` settings), and the estimator of CO2e
avoided and energy potential (:mod:`wastebank.estimates`)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

from msgspec import Meta, field
from pydantic import BaseModel

from wastebank.config import Settings
from wastebank.errors import SetupError
from wastebank.reports.scope import CoverageRule

if TYPE_CHECKING:
    from wastebank.estimates import Impact

DEMO_CITY_FILE = Path(__file__).parent.parent / "data" / "demo_city.toml"
CITIES_DIR = Path(__file__).parent.parent / "data" / "cities"


# ---- settings and the generation estimate -------------------------------------------------------


class ReportSettings(Settings, kw_only=True):
    """``[reports]`` (environment ``WASTEBANK_REPORTS__*``): where each city's population,
    generation rate and TPS count come from, the targets, and when a diversion rate is the
    city's. Unset population/rate: taken from the city's data file (``cities_dir``/<code>.toml,
    or ``generation_file``). docs/dlh.md."""

    population: Annotated[int, Meta(gt=0, description="the city's population")] | None = None
    kg_per_capita_day: (
        Annotated[float, Meta(gt=0, le=5, description="waste generation, kg per person per day")]
        | None
    ) = None
    source: Annotated[str | None, Meta(description="where the two figures come from")] = None
    cities_dir: Annotated[
        Path,
        Meta(
            description="a directory of city data files, <city code>.toml ([city], [population], "
            "[generation], [tps], each with its source; wastebank/data/cities/ambon.toml's shape)"
        ),
    ] = CITIES_DIR
    generation_file: Annotated[
        Path | None, Meta(description="one city data file, used instead of cities_dir/<code>.toml")
    ] = None
    reduction_target_pct: Annotated[
        float, Meta(ge=0, le=100, description="Jakstrada pengurangan target (2025: 30 %)")
    ] = 30.0
    handling_target_pct: Annotated[
        float, Meta(ge=0, le=100, description="Jakstrada penanganan target (2025: 70 %)")
    ] = 70.0
    diversion_coverage: Annotated[
        CoverageRule,
        Meta(
            description="when a diversion rate is shown as the city's (wastebank/reports/scope.py)"
        ),
    ] = field(default_factory=CoverageRule)


class Generation(BaseModel):
    """Waste generation (timbulan) estimate: population x kg per person per day, each with
    where it comes from."""

    city_code: str
    population: int
    population_year: int | None = None
    population_source: str | None = None
    population_url: str | None = None
    kg_per_capita_day: float
    rate_year: int | None = None
    rate_source: str | None = None
    rate_url: str | None = None
    source: str
    basis: Literal["estimated"] = "estimated"

    def grams(self, days: int) -> int:
        return round(self.population * self.kg_per_capita_day * 1000 * days)


class NoGenerationEstimate(SetupError, LookupError):
    """No population / generation rate is configured for the city."""


def city_data(city_code: str, settings: ReportSettings | None = None) -> dict[str, Any]:
    """The city's data file (``generation_file`` when it names this city, else
    ``cities_dir``/<code>.toml) as a dict; empty when there is none."""
    s = settings or ReportSettings()
    for path in (s.generation_file, s.cities_dir / f"{city_code}.toml"):
        if path is None or not path.is_file():
            continue
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
        if doc.get("city", {}).get("code") == city_code:
            return doc
    return {}


def _cited(section: dict[str, Any]) -> str | None:
    """A section's source with its year (its URL is apart)."""
    if not section.get("source"):
        return None
    return f"{section['source']} ({section['year']})" if section.get("year") else section["source"]


def generation_for(city_code: str, settings: ReportSettings | None = None) -> Generation:
    """The city's generation estimate: settings first, then the city's data file's
    ``[population]`` and ``[generation]``."""
    s = settings or ReportSettings()
    doc = city_data(city_code, s)
    pop = dict(doc.get("population", {}))
    gen = dict(doc.get("generation", {}))
    population = s.population or pop.get("count")
    rate = s.kg_per_capita_day or gen.get("kg_per_capita_day")
    if population is None or rate is None:
        raise NoGenerationEstimate(
            f"no generation estimate for city {city_code!r}: write {s.cities_dir}/{city_code}.toml "
            "([population] and [generation] with their sources, docs/dlh.md) or set "
            "WASTEBANK_REPORTS__POPULATION and WASTEBANK_REPORTS__KG_PER_CAPITA_DAY"
        )
    pop_source = "settings" if s.population is not None else _cited(pop)
    rate_source = "settings" if s.kg_per_capita_day is not None else _cited(gen)
    if pop_source is None or rate_source is None:
        raise NoGenerationEstimate(
            f"city {city_code!r}: the population and the generation rate each need a source "
            "(`source`, `year`, `url` in their section; docs/dlh.md)"
        )
    return Generation(
        city_code=city_code,
        population=int(population),
        population_year=None if s.population is not None else pop.get("year"),
        population_source=pop_source,
        population_url=None if s.population is not None else pop.get("url"),
        kg_per_capita_day=float(rate),
        rate_year=None if s.kg_per_capita_day is not None else gen.get("year"),
        rate_source=rate_source,
        rate_url=None if s.kg_per_capita_day is not None else gen.get("url"),
        source=s.source
        or (
            "settings"
            if pop_source == rate_source == "settings"
            else f"penduduk / population: {pop_source}; laju / rate: {rate_source}"
        ),
    )


def tps_in_city(city_code: str, settings: ReportSettings | None = None) -> tuple[int, str] | None:
    """How many TPS the city has in all and where that comes from (the data file's ``[tps]``
    ``count`` and ``source``); None when not entered."""
    tps = dict(city_data(city_code, settings).get("tps", {}))
    count, source = tps.get("count"), _cited(tps)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1 or source is None:
        return None
    return count, source


# ---- estimates (CO2e avoided, energy): wastebank/estimates/ ----------------------------------


class ImpactEstimator(Protocol):
    """What diverting ``grams`` of a material class (``ledger.MaterialClass``) is estimated to be
    worth: ``impact(material_class, grams)`` -> :class:`wastebank.estimates.Impact`, each figure
    a range and CO2e in its parts; ``wastebank.estimates.sum_impacts`` totals several."""

    name: str

    def impact(self, material_class: str, grams: int) -> Impact: ...


def default_estimator() -> ImpactEstimator | None:
    """The estimator of ``wastebank.estimates`` when that module is installed, else None (the
    report then leaves CO2e and energy blank and says so)."""
    import importlib.util

    if importlib.util.find_spec("wastebank.estimates") is None:
        return None
    return EstimatesAdapter()


class EstimatesAdapter:
    """:class:`ImpactEstimator` over ``wastebank.estimates.impact`` (defaults: AR5, uncategorised
    TPA, tropical wet, organics composted, Indonesian heating values). No diversion
    (grams <= 0) is worth zero; a material class the data files do not know has no figure."""

    name = (
        "Estimasi (IPCC 2006, US EPA WARM, nilai kalor sampah Indonesia) / estimated (IPCC 2006, "
        "US EPA WARM, Indonesian heating values)"
    )

    def impact(self, material_class: str, grams: int) -> Impact:
        from wastebank import estimates

        if grams <= 0:
            return estimates.Impact.zero()
        try:
            return estimates.impact({material_class: grams})
        except estimates.UnknownMaterialError as exc:
            return estimates.Impact.unknown(grams, str(exc))
