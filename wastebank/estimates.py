"""Energy and emission estimates for diverted and residual waste (issue 6).

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
so this module never touches the database.

Units: masses in metric tonnes (t) unless a name says otherwise; CO2e in t; energy in kWh or GJ;
power in MW; gas volumes in Nm3 (0 C, 101.325 kPa).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DATA_DIR = Path(__file__).parent / "data" / "estimates"

# The file of each kind that estimates use unless told otherwise. A new version of a data set is a
# new file (e.g. warm_v17.toml) and a change of this pointer; old results keep naming the old one.
DEFAULT_FILES: Mapping[str, str] = {
    "ipcc_waste": "ipcc2006.toml",
    "warm": "warm_v16.toml",
    "recycling_energy": "recycling_energy_2005.toml",
    "energy": "energy.toml",
    "gwp": "gwp.toml",
}

# Unit definitions (exact), not coefficients: they never change with a data version.
SHORT_TON_T = 0.90718474  # 1 short ton = 2000 lb x 0.45359237 kg/lb (NIST Handbook 44, App. C)
GJ_PER_MMBTU = 1.05505585262  # 1 Btu (International Table) = 1055.05585262 J
MJ_PER_KWH = 3.6
KG_PER_T = 1000.0
G_PER_T = 1_000_000
SECONDS_PER_DAY = 86_400
CH4_PER_C = 16.0 / 12.0  # molecular mass of CH4 / atomic mass of C (IPCC 2006 Eq 3.3)
WATER_PER_HYDROGEN = 8.94  # kg H2O formed per kg H burned (18.015 / 2.016)

DEFAULT_GWP = "AR5"  # the UNFCCC / Paris Agreement reporting basis
DEFAULT_SITE = "uncategorised"  # IPCC Table 3.1 MCF 0.6 when the TPA's type is not known

Climate = Literal["tropical_wet", "tropical_dry"]
BiologicalProcess = Literal["composting", "anaerobic_digestion"]
Confidence = Literal["V", "S", "M"]
DEFAULT_CLIMATE: Climate = "tropical_wet"  # Indonesia: MAT > 20 C, MAP >= 1000 mm
FileKind = Literal["ipcc_waste", "warm", "recycling_energy", "energy", "gwp"]


class EstimateDataError(ValueError):
    """A coefficient file is missing, malformed, unsourced or in an unexpected unit."""


class UnknownMaterialError(ValueError):
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
    confidence: Confidence  # V verified, S secondary, M memory (see estimation-methods.md)


class Coefficient(_Strict):
    value: float
    unit: str
    source: str
    note: str = ""


class Table(_Strict):
    """Values that share a unit and a source, keyed by waste type, material or site type."""

    unit: str
    source: str
    values: dict[str, float]
    note: str = ""


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
        used += [(f"tables.{k}", t.source) for k, t in self.tables.items()]
        used += [(f"sets.{s}.{k}", c.source) for s, cs in self.sets.items() for k, c in cs.items()]
        for where, source in used:
            if source not in self.sources:
                raise ValueError(f"{where}: source {source!r} is not in [sources]")
        both = set(self.materials) & set(self.not_modelled)
        if both:
            raise ValueError(f"in both [materials] and [not_modelled]: {sorted(both)}")
        return self

    def coefficient(self, name: str) -> float:
        return self.coefficients[name].value

    def table(self, name: str) -> dict[str, float]:
        return self.tables[name].values


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
        ("coefficients", "water_latent_heat"): "MJ/kg",
        ("coefficients", "bmp"): "Nm3 CH4/kg VS",
        ("coefficients", "ch4_lhv"): "MJ/Nm3",
        ("coefficients", "ch4_density"): "kg/Nm3",
        ("coefficients", "chp_electrical_efficiency"): "fraction",
        ("coefficients", "biogas_ceiling_docf"): "fraction",
        ("tables", "hhv_as_discarded"): "MJ/kg",
        ("tables", "moisture"): "fraction",
        ("tables", "hydrogen_dry"): "fraction",
        ("tables", "total_solids"): "fraction",
        ("tables", "vs_per_ts"): "fraction",
    },
    "gwp": {},
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

    @property
    def materials(self) -> frozenset[str]:
        """Every material class the files know (the IPCC file maps each one)."""
        return frozenset(self.ipcc.materials)

    def check_material(self, material: str, category: str | None = None) -> None:
        if material not in self.materials:
            raise UnknownMaterialError(material, category, self.materials)


def _check_cross_references(d: EstimateData) -> None:
    known = d.materials
    ipcc = d.ipcc
    for waste_type in set(ipcc.materials.values()):
        for table in ("doc", "k_tropical_wet", "k_tropical_dry"):
            if waste_type not in ipcc.table(table):
                raise EstimateDataError(f"{ipcc.meta.id}: tables.{table} has no {waste_type!r}")
    for name in ipcc.lists.get("biologically_treatable", []):
        if name not in ipcc.table("doc"):
            raise EstimateDataError(f"{ipcc.meta.id}: unknown treatable waste type {name!r}")
    for f, tables in (
        (d.warm, ("recycling_ghg",)),
        (d.recycling_energy, ("energy_saved_per_short_ton", "energy_saved_per_kg")),
        (d.energy, ("hhv_as_discarded",)),
    ):
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
    for key in set(d.energy.materials.values()):
        for table in ("moisture", "hydrogen_dry"):
            if key not in d.energy.table(table):
                raise EstimateDataError(f"{d.energy.meta.id}: tables.{table} has no {key!r}")


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
    )
    _check_cross_references(d)
    return d


@cache
def default_data() -> EstimateData:
    """The packaged coefficient files, loaded once."""
    return load_estimate_data()


# ---- results -----------------------------------------------------------------------------------


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)


class DataRef(_Result):
    """A data file (id and version) and the source ids of it that an estimate used."""

    dataset: str
    version: str
    sources: tuple[str, ...]


class Estimate(_Result):
    basis: Literal["estimated"] = "estimated"
    method: str
    provenance: tuple[DataRef, ...]


class GwpSet(_Result):
    """GWP-100 values, t CO2e per t of gas; ``ch4`` is for biogenic (non-fossil) CH4."""

    name: str
    ch4: float
    n2o: float
    ref: DataRef


def gwp_set(name: str = DEFAULT_GWP, data: EstimateData | None = None) -> GwpSet:
    """The GWP set ``name`` ("SAR", "AR4", "AR5", "AR6") from the GWP file."""
    d = data or default_data()
    gases = d.gwp.sets.get(name)
    if gases is None:
        raise ValueError(f"unknown GWP set {name!r}; known: {', '.join(sorted(d.gwp.sets))}")
    ref = _ref(d.gwp, [gases["ch4"].source, gases["n2o"].source])
    return GwpSet(name=name, ch4=gases["ch4"].value, n2o=gases["n2o"].value, ref=ref)


def _ref(f: DataFile, sources: Iterable[str]) -> DataRef:
    return DataRef(dataset=f.meta.id, version=f.meta.version, sources=tuple(sorted(set(sources))))


def _resolve_gwp(gwp: GwpSet | str, d: EstimateData) -> GwpSet:
    return gwp if isinstance(gwp, GwpSet) else gwp_set(gwp, d)


def _check_tonnes(tonnes_by_material: Mapping[str, float], d: EstimateData) -> None:
    for material, t in tonnes_by_material.items():
        d.check_material(material)
        if not (math.isfinite(t) and t >= 0):
            raise ValueError(f"tonnes for {material!r} must be finite and >= 0, got {t!r}")


# ---- landfill methane avoided (IPCC 2006 FOD) ------------------------------------------------


class FodYear(_Result):
    year: int  # years after the (first) diversion year: 1..N
    ch4_t: float
    co2e_t: float


class FodMaterial(_Result):
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
    data: EstimateData | None = None,
) -> FodResult:
    """Landfill CH4 avoided by diverting ``tonnes_by_material`` (wet t) in one year: the annual
    series for years 1..``years`` after it and the lifetime figure (IPCC 2006 Vol. 5 Eq 3.1-3.6)."""
    return methane_avoided_series(
        [tonnes_by_material],
        years,
        gwp,
        site=site,
        climate=climate,
        oxidation=oxidation,
        recovery_fraction=recovery_fraction,
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
    data: EstimateData | None = None,
) -> FodResult:
    """As :func:`methane_avoided`, for diversions in successive years: ``tonnes_by_year[i]`` is
    diverted in year i (year 0 is the first). Waste diverted in year i would have started to decay
    on 1 January of year i + 1, as Eq 3.4/3.5 are printed; the series is years 1..``years``."""
    d = data or default_data()
    g = _resolve_gwp(gwp, d)
    if years < 1:
        raise ValueError("years must be >= 1")
    if not 0.0 <= recovery_fraction <= 1.0:
        raise ValueError("recovery_fraction must be within 0..1")
    ipcc = d.ipcc
    mcf_table, ox_table = ipcc.table("mcf"), ipcc.table("ox")
    if site not in mcf_table:
        raise ValueError(f"unknown site type {site!r}; known: {', '.join(sorted(mcf_table))}")
    if oxidation not in ox_table:
        raise ValueError(f"unknown oxidation {oxidation!r}; known: {', '.join(sorted(ox_table))}")
    k_table = ipcc.table(f"k_{climate}")
    for year in tonnes_by_year:
        _check_tonnes(year, d)
    docf, f, mcf, ox = (
        ipcc.coefficient("docf"),
        ipcc.coefficient("f"),
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
        doc, k = ipcc.table("doc")[waste_type], k_table[waste_type]
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
            _ref(
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


# ---- recycling credits (US EPA WARM) ----------------------------------------------------------


class RecyclingMaterial(_Result):
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
    tonnes_by_material: Mapping[str, float], *, data: EstimateData | None = None
) -> RecyclingResult:
    """Emissions and energy avoided by recycling ``tonnes_by_material`` (metric t). WARM factors
    are per short ton: short tons = t / 0.90718474."""
    d = data or default_data()
    _check_tonnes(tonnes_by_material, d)
    warm, re = d.warm, d.recycling_energy
    ghg = warm.table("recycling_ghg")
    per_short_ton = re.table("energy_saved_per_short_ton")
    per_kg, yields = re.table("energy_saved_per_kg"), re.table("recycling_yield")
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
    provenance = [_ref(warm, [warm.tables["recycling_ghg"].source])]
    if re_sources:
        provenance.append(_ref(re, re_sources))
    return RecyclingResult(
        method="US EPA WARM recycling factors (t CO2e/short ton, converted to metric t)",
        provenance=tuple(provenance),
        by_material=by_material,
        co2e_avoided_t=sum(m.co2e_avoided_t for m in by_material.values()),
        energy_saved_gj=total_gj,
        energy_saved_mmbtu=total_gj / GJ_PER_MMBTU,
        not_estimated=not_estimated,
    )


# ---- thermal energy (waste-to-energy) ---------------------------------------------------------


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


def lower_heating_value(material: str, *, data: EstimateData | None = None) -> float:
    """LHV as received, MJ/kg: HHV_ar - L x (w + 8.94 x H_dry x (1 - w)), with HHV as discarded,
    moisture w, dry-basis hydrogen H and L the latent heat of water (energy.toml)."""
    d = data or default_data()
    d.check_material(material)
    e = d.energy
    key = e.materials.get(material)
    if key is None:
        raise ValueError(f"no heating value for {material!r}: {e.not_modelled[material]}")
    w, h = e.table("moisture")[key], e.table("hydrogen_dry")[key]
    latent = e.coefficient("water_latent_heat")
    return e.table("hhv_as_discarded")[key] - latent * (w + WATER_PER_HYDROGEN * h * (1.0 - w))


def _mix_lhv(
    material_mix: Mapping[str, float], efficiency: float | None, d: EstimateData
) -> tuple[dict[str, float], float, float, tuple[DataRef, ...]]:
    _check_tonnes(material_mix, d)
    total = sum(material_mix.values())
    if total <= 0:
        raise ValueError("material_mix must have a positive total")
    mix = {m: share / total for m, share in sorted(material_mix.items()) if share > 0}
    lhv = sum(share * lower_heating_value(m, data=d) for m, share in mix.items())
    e = d.energy
    eta = e.coefficient("wte_net_electrical_efficiency") if efficiency is None else efficiency
    if not 0.0 <= eta <= 1.0:
        raise ValueError("efficiency must be within 0..1")
    names = ["hhv_as_discarded", "moisture", "hydrogen_dry"]
    sources = [e.tables[n].source for n in names] + [e.coefficients["water_latent_heat"].source]
    if efficiency is None:
        sources.append(e.coefficients["wte_net_electrical_efficiency"].source)
    return mix, lhv, eta, (_ref(e, sources),)


def thermal_energy(
    tonnes: float,
    material_mix: Mapping[str, float],
    *,
    efficiency: float | None = None,
    data: EstimateData | None = None,
) -> ThermalEnergy:
    """Energy in ``tonnes`` (wet t) of residual waste of ``material_mix`` (shares by mass, any
    scale: normalised): thermal kWh = t x 1000 x LHV / 3.6; electric kWh = thermal x efficiency."""
    d = data or default_data()
    if not (math.isfinite(tonnes) and tonnes >= 0):
        raise ValueError("tonnes must be finite and >= 0")
    mix, lhv, eta, refs = _mix_lhv(material_mix, efficiency, d)
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
    data: EstimateData | None = None,
) -> ThermalPower:
    """Average power of a plant burning ``tonnes_per_day``: MW = t/d x 1000 x LHV / 86,400."""
    d = data or default_data()
    if not (math.isfinite(tonnes_per_day) and tonnes_per_day >= 0):
        raise ValueError("tonnes_per_day must be finite and >= 0")
    mix, lhv, eta, refs = _mix_lhv(material_mix, efficiency, d)
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


class BiogasMaterial(_Result):
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
    data: EstimateData | None = None,
) -> BiogasResult:
    """CH4 and energy from digesting ``tonnes_by_material`` (fresh t): the BMP route, capped by
    the IPCC DOC ceiling; materials without solids data are listed in ``not_estimated``."""
    d = data or default_data()
    _check_tonnes(tonnes_by_material, d)
    e, ipcc = d.energy, d.ipcc
    ts, vs = e.table("total_solids"), e.table("vs_per_ts")
    bmp, density = e.coefficient("bmp"), e.coefficient("ch4_density")
    ceiling_docf, f = e.coefficient("biogas_ceiling_docf"), ipcc.coefficient("f")
    eta = (
        e.coefficient("chp_electrical_efficiency")
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
        doc = ipcc.table("doc")[ipcc.materials[material]]
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
    energy_kwh = nm3 * e.coefficient("ch4_lhv") / MJ_PER_KWH
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
            _ref(e, sources),
            _ref(ipcc, [ipcc.tables["doc"].source, ipcc.coefficients["f"].source]),
        ),
        by_material=by_material,
        ch4_nm3=nm3,
        ch4_t=nm3 * density / KG_PER_T,
        energy_kwh=energy_kwh,
        electric_kwh=energy_kwh * eta,
        not_estimated=not_estimated,
    )


# ---- composting / digestion emissions (IPCC 2006 Table 4.1) -----------------------------------


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
    data: EstimateData | None = None,
) -> BiologicalResult:
    """CH4 and N2O emitted by composting (or digesting) ``tonnes_by_material`` (wet t): IPCC 2006
    Eq 4.1/4.2 with Table 4.1 factors, g per kg wet = kg per t; t gas = t x factor / 1000."""
    d = data or default_data()
    g = _resolve_gwp(gwp, d)
    _check_tonnes(tonnes_by_material, d)
    ipcc = d.ipcc
    treatable = set(ipcc.lists.get("biologically_treatable", []))
    for material in tonnes_by_material:
        if ipcc.materials[material] not in treatable:
            raise ValueError(
                f"material class {material!r} ({ipcc.materials[material]}) is not "
                f"biologically treatable; treatable waste types: {', '.join(sorted(treatable))}"
            )
    tonnes = sum(tonnes_by_material.values())
    ch4 = tonnes * ipcc.table("bio_ch4")[process] / KG_PER_T
    n2o = tonnes * ipcc.table("bio_n2o")[process] / KG_PER_T
    return BiologicalResult(
        method=f"IPCC 2006 Vol. 5 Ch. 4 Table 4.1 default factors ({process})",
        provenance=(_ref(ipcc, [ipcc.tables["bio_ch4"].source]), g.ref),
        process=process,
        gwp=g.name,
        tonnes=tonnes,
        ch4_t=ch4,
        n2o_t=n2o,
        co2e_t=ch4 * g.ch4 + n2o * g.n2o,
    )


# ---- per category (ledger totals) --------------------------------------------------------------


class CategoryEstimate(_Result):
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
    g = _resolve_gwp(gwp, d)
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
