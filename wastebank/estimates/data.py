"""The coefficient files: versioned TOML under ``wastebank/data/estimates/``, each coefficient
with a value, a unit and a cited source, loaded and checked before any estimate uses them (a
coefficient without a known source, in an unexpected unit or out of range, or a material class
one file knows and another does not, is refused with :class:`EstimateDataError`)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from wastebank.errors import Invalid, SetupError
from wastebank.estimates.ranges import Bound

DATA_DIR = Path(__file__).parent.parent / "data" / "estimates"

# The file of each kind that estimates use unless told otherwise. A new version of a data set is a
# new file (e.g. warm_v17.toml) and a change of this pointer; old results keep naming the old one.
DEFAULT_FILES: Mapping[str, str] = {
    "ipcc_waste": "ipcc2006.toml",
    "warm": "warm_v16.toml",
    "recycling_energy": "recycling_energy_2005.toml",
    "energy": "energy.toml",
    "gwp": "gwp.toml",
    "tariff": "pltsa_tariff.toml",
}

Confidence = Literal["V", "S", "M"]  # verified, secondary, memory (docs/methods.md)
FileKind = Literal["ipcc_waste", "warm", "recycling_energy", "energy", "gwp", "tariff"]
COMPOSITION_PREFIX = "composition_"  # energy tables of mixed-waste compositions: the WtE mixes

# What a person reads for each material class (Bahasa Indonesia, English): the reports and the
# DLH page name a material this way, never by its code. Every class the IPCC file maps has one
# (checked at load).
MATERIAL_NAMES: Mapping[str, tuple[str, str]] = {
    "pet": ("Plastik PET", "PET plastic"),
    "hdpe": ("Plastik HDPE", "HDPE plastic"),
    "pp": ("Plastik PP", "PP plastic"),
    "ldpe": ("Plastik LDPE (kresek, film)", "LDPE plastic (bags, film)"),
    "mixed_plastic": ("Plastik campuran", "Mixed plastics"),
    "corrugated": ("Kardus", "Corrugated cardboard"),
    "office_paper": ("Kertas HVS", "Office paper"),
    "newspaper": ("Koran", "Newspaper"),
    "mixed_paper": ("Kertas campuran", "Mixed paper"),
    "aluminium": ("Aluminium", "Aluminium"),
    "steel": ("Besi, kaleng", "Steel, cans"),
    "copper": ("Tembaga", "Copper"),
    "glass": ("Kaca", "Glass"),
    "textile": ("Tekstil", "Textiles"),
    "rubber_leather": ("Karet, kulit", "Rubber, leather"),
    "wood": ("Kayu", "Wood"),
    "food": ("Sisa makanan", "Food waste"),
    "yard": ("Sampah kebun", "Yard waste"),
    "cooking_oil": ("Minyak jelantah", "Used cooking oil"),
    "other": ("Lainnya", "Other"),
}


def not_modelled_reason(material: str, reason: str) -> str:
    """Why ``material`` has no figure, as printed: ``reason`` (a data file's ``Bahasa /
    English``) with the material's name in each language, ``Kardus: belum ada faktor ... /
    Corrugated cardboard: no sourced ...``."""
    name_id, name_en = MATERIAL_NAMES[material]
    reason_id, reason_en = reason.split(" / ")
    return f"{name_id}: {reason_id} / {name_en}: {reason_en}"


class EstimateDataError(SetupError, ValueError):
    """A coefficient file is missing, malformed, unsourced or in an unexpected unit."""


class UnknownMaterialError(Invalid, ValueError):
    """A material class (or the category that names it) that the coefficient files do not know."""

    def __init__(self, material: str, category: str | None = None, known: Iterable[str] = ()):
        self.material = material
        self.category = category
        where = (
            f"category {category!r} has material class {material!r}"
            if category
            else (f"material class {material!r}")
        )
        hint = f"; known: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"{where}, which the estimate data files do not know{hint}")


# ---- data files --------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    citation: str = Field(min_length=1)
    confidence: Confidence  # V verified, S secondary, M memory (see docs/methods.md)


# A coefficient whose file gives no range is taken within +/- this share of its value, by its
# source's confidence tag (docs/estimates.md, "Uncertainty").
TAG_SPREAD: Mapping[Confidence, float] = {"V": 0.10, "S": 0.25, "M": 0.50}
_NON_NEGATIVE = {
    "fraction",
    "1/yr",
    "MJ/kg",
    "g/kg wet",
    "MJ/Nm3",
    "kg/Nm3",
    "Nm3 CH4/kg VS",
    "h/yr",
    "MW",
    "USD cent/kWh",
}


def _check_ends(where: str, value: float, low: float | None, high: float | None) -> None:
    if low is not None and low > value:
        raise ValueError(f"{where}: low {low} is above the value {value}")
    if high is not None and high < value:
        raise ValueError(f"{where}: high {high} is below the value {value}")


class Coefficient(_Strict):
    """A value and, when its source gives one, the range around it (``low``, ``high``)."""

    value: float
    unit: str
    source: str
    low: float | None = None
    high: float | None = None
    note: str = ""

    @model_validator(mode="after")
    def _ends(self) -> Coefficient:
        _check_ends("coefficient", self.value, self.low, self.high)
        return self


class Table(_Strict):
    """Values that share a unit and a source, keyed by waste type, material or site type, and
    the ends of their ranges where the source gives them (``low``, ``high``: same keys).
    ``low_source`` names, per key, the source of a low end that is not the table's own (a
    second study measuring lower)."""

    unit: str
    source: str
    values: dict[str, float]
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    low_source: dict[str, str] = {}
    note: str = ""

    @model_validator(mode="after")
    def _ends(self) -> Table:
        for name, ends in (("low", self.low), ("high", self.high), ("low_source", self.low_source)):
            extra = set(ends) - set(self.values)
            if extra:
                raise ValueError(f"{name} has keys without a value: {sorted(extra)}")
        if unbounded := sorted(set(self.low_source) - set(self.low)):
            raise ValueError(f"low_source names keys without a low end: {unbounded}")
        for key, v in self.values.items():
            _check_ends(key, v, self.low.get(key), self.high.get(key))
        return self

    @property
    def sources(self) -> list[str]:
        """Every source the table's figures come from: its own, then those of its low ends."""
        return [self.source, *sorted(set(self.low_source.values()) - {self.source})]


class Meta(_Strict):
    kind: FileKind
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: str = Field(min_length=1)


class DataFile(_Strict):
    """One coefficient file. ``materials`` maps a material class to the file's own key (an IPCC
    waste type, a WARM material, an energy component); ``not_modelled`` says why a material class
    has no factor in this file."""

    meta: Meta
    sources: dict[str, Source]
    coefficients: dict[str, Coefficient] = {}
    tables: dict[str, Table] = {}
    sets: dict[str, dict[str, Coefficient]] = {}
    lists: dict[str, list[str]] = {}
    materials: dict[str, str] = {}
    not_modelled: dict[str, str] = {}

    @model_validator(mode="after")
    def _sources_known(self) -> DataFile:
        used = [(f"coefficients.{k}", c.source) for k, c in self.coefficients.items()]
        used += [(f"tables.{k}", source) for k, t in self.tables.items() for source in t.sources]
        used += [(f"sets.{s}.{k}", c.source) for s, cs in self.sets.items() for k, c in cs.items()]
        for where, source in used:
            if source not in self.sources:
                raise ValueError(f"{where}: source {source!r} is not in [sources]")
        both = set(self.materials) & set(self.not_modelled)
        if both:
            raise ValueError(f"in both [materials] and [not_modelled]: {sorted(both)}")
        for material, why in self.not_modelled.items():
            if why.count(" / ") != 1:  # printed as is, Bahasa first (not_modelled_reason)
                raise ValueError(f"not_modelled.{material}: not 'Bahasa / English': {why!r}")
        return self

    def coefficient(self, name: str, bound: Bound = "central") -> float:
        """The coefficient ``name`` at ``bound``: its value, or the low or high end of its range
        (the file's, else the confidence tag's)."""
        c = self.coefficients[name]
        if bound == "central":
            return c.value
        return self._end(c.value, c.low if bound == "low" else c.high, c.unit, c.source, bound)

    def table(self, name: str, bound: Bound = "central") -> dict[str, float]:
        """The values of table ``name`` at ``bound`` (see :meth:`coefficient`)."""
        t = self.tables[name]
        if bound == "central":
            return t.values
        given = t.low if bound == "low" else t.high
        return {k: self._end(v, given.get(k), t.unit, t.source, bound) for k, v in t.values.items()}

    def _end(
        self, value: float, given: float | None, unit: str, source: str, bound: Bound
    ) -> float:
        if given is not None:
            return given
        spread = TAG_SPREAD[self.sources[source].confidence] * abs(value)
        end = value - spread if bound == "low" else value + spread
        if unit in _NON_NEGATIVE:
            end = max(end, 0.0)
        return min(end, 1.0) if unit == "fraction" else end


# Expected units: (section, name) -> unit. A file of the kind must have each, in that unit.
_EXPECTED: Mapping[str, Mapping[tuple[str, str], str]] = {
    "ipcc_waste": {
        ("coefficients", "docf"): "fraction",
        ("coefficients", "f"): "fraction",
        ("tables", "doc"): "fraction",
        ("tables", "mcf"): "fraction",
        ("tables", "ox"): "fraction",
        ("tables", "k_tropical_wet"): "1/yr",
        ("tables", "k_tropical_dry"): "1/yr",
        ("tables", "bio_ch4"): "g/kg wet",
        ("tables", "bio_n2o"): "g/kg wet",
    },
    "warm": {("tables", "recycling_ghg"): "t CO2e/short ton"},
    "recycling_energy": {
        ("tables", "energy_saved_per_short_ton"): "MMBtu/short ton",
        ("tables", "energy_saved_per_kg"): "MJ/kg",
        ("tables", "recycling_yield"): "fraction",
    },
    "energy": {
        ("coefficients", "wte_net_electrical_efficiency"): "fraction",
        ("coefficients", "wte_operating_hours"): "h/yr",
        ("coefficients", "wte_min_lhv"): "MJ/kg",
        ("coefficients", "oxidation_incineration"): "fraction",
        ("coefficients", "water_latent_heat"): "MJ/kg",
        ("coefficients", "bmp"): "Nm3 CH4/kg VS",
        ("coefficients", "ch4_lhv"): "MJ/Nm3",
        ("coefficients", "ch4_density"): "kg/Nm3",
        ("coefficients", "chp_electrical_efficiency"): "fraction",
        ("coefficients", "biogas_ceiling_docf"): "fraction",
        ("tables", "hhv_as_discarded"): "MJ/kg",
        ("tables", "moisture_as_discarded"): "fraction",
        ("tables", "moisture"): "fraction",
        ("tables", "hydrogen_dry"): "fraction",
        ("tables", "carbon_dry"): "fraction",
        ("tables", "fossil_carbon"): "fraction",
        ("tables", "total_solids"): "fraction",
        ("tables", "vs_per_ts"): "fraction",
    },
    "gwp": {},
    "tariff": {
        ("coefficients", "p35_small_max_mw"): "MW",
        ("coefficients", "p35_small_usd_cents"): "USD cent/kWh",
        ("coefficients", "p35_large_intercept"): "USD cent/kWh",
        ("coefficients", "p35_large_slope"): "USD cent/kWh per MW",
        ("coefficients", "p109_usd_cents"): "USD cent/kWh",
        ("coefficients", "p109_min_tonnes_per_day"): "t/day",
    },
}
_GWP_UNIT = "t CO2e/t"


def _check_units(path: Path, f: DataFile) -> None:
    for (section, name), unit in _EXPECTED[f.meta.kind].items():
        entries: Mapping[str, Coefficient | Table] = (
            f.coefficients if section == "coefficients" else f.tables
        )
        entry = entries.get(name)
        if entry is None:
            raise EstimateDataError(f"{path.name}: [{section}] has no {name!r}")
        if entry.unit != unit:
            raise EstimateDataError(
                f"{path.name}: {section}.{name} is in {entry.unit!r}, expected {unit!r}"
            )
        values = [entry.value] if isinstance(entry, Coefficient) else list(entry.values.values())
        if unit == "fraction" and not all(0.0 <= v <= 1.0 for v in values):
            raise EstimateDataError(f"{path.name}: {section}.{name} has a fraction outside 0..1")
        if unit in {"1/yr", "MJ/kg", "g/kg wet"} and not all(v >= 0.0 for v in values):
            raise EstimateDataError(f"{path.name}: {section}.{name} has a negative value")
    for set_name, gases in f.sets.items():
        for gas in ("ch4", "n2o"):
            c = gases.get(gas)
            if c is None or c.unit != _GWP_UNIT:
                raise EstimateDataError(
                    f"{path.name}: sets.{set_name}.{gas} must be given in {_GWP_UNIT!r}"
                )


def load_data_file(path: Path, kind: FileKind) -> DataFile:
    """Load and validate one coefficient file of the given kind."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        f = DataFile.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise EstimateDataError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise EstimateDataError(f"{path.name}: {exc}") from exc
    if f.meta.kind != kind:
        raise EstimateDataError(f"{path.name}: meta.kind is {f.meta.kind!r}, expected {kind!r}")
    _check_units(path, f)
    return f


@dataclass(frozen=True)
class EstimateData:
    """The coefficient files one estimate uses."""

    ipcc: DataFile
    warm: DataFile
    recycling_energy: DataFile
    energy: DataFile
    gwp: DataFile
    tariff: DataFile

    @property
    def materials(self) -> frozenset[str]:
        """Every material class the files know (the IPCC file maps each one)."""
        return frozenset(self.ipcc.materials)

    def check_material(self, material: str, category: str | None = None) -> None:
        if material not in self.materials:
            raise UnknownMaterialError(material, category, self.materials)


def _check_cross_references(d: EstimateData) -> None:
    """The files agree: every material class the IPCC file maps is in each other file (with a
    value, or a reason it has none), and every key they name has its values."""
    _check_ipcc(d.ipcc)
    if unnamed := sorted(set(d.ipcc.materials) - set(MATERIAL_NAMES)):
        raise EstimateDataError(f"{d.ipcc.meta.id}: no name in MATERIAL_NAMES for {unnamed}")
    for f, tables in (
        (d.warm, ("recycling_ghg",)),
        (d.recycling_energy, ("energy_saved_per_short_ton", "energy_saved_per_kg")),
        (d.energy, ("hhv_as_discarded",)),
    ):
        _check_materials(f, tables, d.ipcc)
    components = d.energy.table("hhv_as_discarded").keys()
    per_component = ("moisture_as_discarded", "moisture", "hydrogen_dry")
    _check_has(d.energy, components, (*per_component, "carbon_dry", "fossil_carbon"))
    _check_compositions(d.energy, set(components))


def _check_compositions(e: DataFile, components: set[str]) -> None:
    """Each mixed-waste composition names known components and sums to 1 (rounding: 1e-3)."""
    for name, t in e.tables.items():
        if not name.startswith(COMPOSITION_PREFIX):
            continue
        unknown = set(t.values) - components
        if unknown:
            raise EstimateDataError(f"{e.meta.id}: tables.{name}: unknown {sorted(unknown)}")
        if abs(sum(t.values.values()) - 1.0) > 1e-3:
            raise EstimateDataError(f"{e.meta.id}: tables.{name} does not sum to 1")


def _check_has(f: DataFile, keys: Iterable[str], tables: Iterable[str]) -> None:
    """Each of ``tables`` of ``f`` has a value for each of ``keys``."""
    for key in set(keys):
        for table in tables:
            if key not in f.table(table):
                raise EstimateDataError(f"{f.meta.id}: tables.{table} has no {key!r}")


def _check_ipcc(ipcc: DataFile) -> None:
    """Each waste type the IPCC file maps a material class to has a DOC and decay rates, and
    each biologically treatable one is a waste type."""
    _check_has(ipcc, ipcc.materials.values(), ("doc", "k_tropical_wet", "k_tropical_dry"))
    for name in ipcc.lists.get("biologically_treatable", []):
        if name not in ipcc.table("doc"):
            raise EstimateDataError(f"{ipcc.meta.id}: unknown treatable waste type {name!r}")


def _check_materials(f: DataFile, tables: Sequence[str], ipcc: DataFile) -> None:
    """``f`` covers the material classes of the IPCC file, no more, and each one it maps has a
    value in one of ``tables``."""
    known = set(ipcc.materials)
    covered = set(f.materials) | set(f.not_modelled)
    if covered != known:
        missing, extra = sorted(known - covered), sorted(covered - known)
        raise EstimateDataError(
            f"{f.meta.id}: material classes differ from {ipcc.meta.id}: "
            f"missing {missing}, unknown {extra}"
        )
    for material, key in f.materials.items():
        if not any(key in f.table(t) for t in tables):
            raise EstimateDataError(f"{f.meta.id}: {material} -> {key!r}, which has no value")


def load_estimate_data(
    directory: Path = DATA_DIR, files: Mapping[str, str] = DEFAULT_FILES
) -> EstimateData:
    """Load and validate the coefficient files (``files``: kind -> file name in ``directory``)."""
    loaded = {kind: load_data_file(directory / files[kind], kind) for kind in DEFAULT_FILES}  # type: ignore[arg-type]
    d = EstimateData(
        ipcc=loaded["ipcc_waste"],
        warm=loaded["warm"],
        recycling_energy=loaded["recycling_energy"],
        energy=loaded["energy"],
        gwp=loaded["gwp"],
        tariff=loaded["tariff"],
    )
    _check_cross_references(d)
    return d


@cache
def default_data() -> EstimateData:
    """The packaged coefficient files, loaded once."""
    return load_estimate_data()
