"""A waste-to-energy plant (PLTSa) scenario: tonnes a day of mixed waste in, its heating value,
the net electricity, the fossil CO2 of burning it (IPCC 2006 Vol. 5 Eq 5.2) and what PT PLN pays
for the electricity (Perpres 35/2018 Pasal 11, or Perpres 109/2025 Pasal 19)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from wastebank.estimates.data import COMPOSITION_PREFIX, EstimateData, default_data
from wastebank.estimates.energy import LHV_TABLES, component_lhv
from wastebank.estimates.ranges import Bound, Range, Text, flip
from wastebank.estimates.results import Estimate, data_ref
from wastebank.estimates.units import KG_PER_T, SECONDS_PER_DAY
from wastebank.formats import number, thousands

Regulation = Literal["perpres_35_2018", "perpres_109_2025"]
DEFAULT_REGULATION: Regulation = "perpres_35_2018"
DEFAULT_MIX = "sipsn_2023"
CO2_PER_C = 44.0 / 12.0
DAYS_PER_YEAR = 365.0
MAX_TONNES_PER_DAY = 20_000.0  # above the largest plants built (about 6,000 t/day): a typo


class RupiahRange(BaseModel):
    """Whole Rupiah, central first (see :class:`Range`)."""

    model_config = ConfigDict(frozen=True)

    central: int
    low: int
    high: int


class Tariff(BaseModel):
    model_config = ConfigDict(frozen=True)

    regulation: Regulation
    band: Text  # the band of the regulation the capacity falls in
    usd_cents_per_kwh: Range  # at the low, central and high capacity


class WteScenario(Estimate):
    """A PLTSa burning ``tonnes_per_day`` of mixed waste of composition ``mix`` (energy
    components, shares of wet mass) for ``operating_hours`` a year."""

    tonnes_per_day: float
    mix_name: str | None
    mix: dict[str, float]
    moisture: Range  # of the mix, wet basis
    lhv_mj_per_kg: Range  # as received
    efficiency: Range  # net electrical
    operating_hours: Range  # per year
    thermal_mw: Range
    net_electric_mw: Range  # the capacity sold to PT PLN (the tariff band's)
    electricity_mwh_per_year: Range
    fossil_co2_t_per_year: Range  # IPCC Eq 5.2, oxidation factor 1
    fossil_co2_kg_per_mwh: Range  # per MWh sold (central: central over central)
    tariff: Tariff
    revenue_usd_per_year: Range
    revenue_idr_per_year: RupiahRange | None  # only when an exchange rate is given
    idr_per_usd: int | None
    warnings: list[Text]


def mixes(data: EstimateData | None = None) -> dict[str, dict[str, float]]:
    """The named compositions of energy.toml (``composition_<name>`` tables), by name."""
    e = (data or default_data()).energy
    n = len(COMPOSITION_PREFIX)
    return {k[n:]: t.values for k, t in e.tables.items() if k.startswith(COMPOSITION_PREFIX)}


def _check_inputs(tonnes_per_day: float, efficiency: float | None, idr_per_usd: int | None) -> None:
    if not (math.isfinite(tonnes_per_day) and 0 < tonnes_per_day <= MAX_TONNES_PER_DAY):
        raise ValueError(
            f"tonnes_per_day harus di atas 0 dan paling banyak {MAX_TONNES_PER_DAY:g} / "
            f"tonnes_per_day must be above 0 and at most {MAX_TONNES_PER_DAY:g}"
        )
    if efficiency is not None and not (math.isfinite(efficiency) and 0.05 <= efficiency <= 0.45):
        raise ValueError(
            "efficiency harus antara 0,05 dan 0,45 (listrik neto, dari LHV) / "
            "efficiency must be within 0.05..0.45 (net electrical, of LHV)"
        )
    if idr_per_usd is not None and not 1_000 <= idr_per_usd <= 100_000:
        raise ValueError(
            "idr_per_usd harus antara 1.000 dan 100.000 / idr_per_usd must be within 1000..100000"
        )


def _shares(mix: str | Mapping[str, float], d: EstimateData) -> tuple[str | None, dict[str, float]]:
    """The mix's name (None for shares given) and its shares, normalised."""
    components = set(d.energy.table("moisture"))
    if not isinstance(mix, str):
        return None, _normalised(mix, components)
    named = mixes(d)
    if mix not in named:
        raise ValueError(
            f"campuran {mix!r} tidak dikenal / unknown mix {mix!r}; known: "
            f"{', '.join(sorted(named))}"
        )
    return mix, _normalised(named[mix], components)


def _normalised(mix: Mapping[str, float], components: set[str]) -> dict[str, float]:
    unknown = sorted(set(mix) - components)
    if unknown:
        raise ValueError(
            f"komponen tidak dikenal / unknown components {unknown}; known: "
            f"{', '.join(sorted(components))}"
        )
    if not all(math.isfinite(v) and v >= 0 for v in mix.values()):
        raise ValueError(
            "porsi komposisi harus terhingga dan >= 0 / composition shares must be finite and >= 0"
        )
    total = sum(mix.values())
    if not (math.isfinite(total) and total > 0):  # shares of 1e308 each sum to inf
        raise ValueError(
            "jumlah komposisi harus positif dan terhingga / the composition must have a "
            "positive total that is finite"
        )
    return {k: v / total for k, v in sorted(mix.items()) if v > 0}


def wte_scenario(
    tonnes_per_day: float,
    mix: str | Mapping[str, float] = DEFAULT_MIX,
    *,
    efficiency: float | None = None,
    regulation: Regulation = DEFAULT_REGULATION,
    idr_per_usd: int | None = None,
    data: EstimateData | None = None,
) -> WteScenario:
    """The PLTSa scenario. ``mix``: a named composition (:func:`mixes`) or shares per energy
    component (normalised). ``efficiency``: net electrical, else energy.toml's (with its range).
    ``idr_per_usd``: the exchange rate for revenue in Rupiah (none is assumed). ValueError for
    input outside its range."""
    d = data or default_data()
    e = d.energy
    _check_inputs(tonnes_per_day, efficiency, idr_per_usd)
    mix_name, shares = _shares(mix, d)

    def eta(b: Bound) -> float:
        if efficiency is not None:
            return efficiency
        return e.coefficient("wte_net_electrical_efficiency", b)

    def lhv(b: Bound) -> float:
        return sum(s * component_lhv(k, bound=b, data=d) for k, s in shares.items())

    def thermal_mw(b: Bound) -> float:
        return tonnes_per_day * KG_PER_T * lhv(b) / SECONDS_PER_DAY

    def electric_mw(b: Bound) -> float:
        # a negative heating value gives no electricity (the plant needs support fuel)
        return max(thermal_mw(b), 0.0) * eta(b)

    def mwh(b: Bound) -> float:
        return electric_mw(b) * e.coefficient("wte_operating_hours", b)

    def fossil_co2(b: Bound) -> float:
        # Eq 5.2: SW x dm x CF x FCF x OF x 44/12, dm = 1 - moisture (so the low takes the high w)
        w = e.table("moisture", flip(b))
        cf, fcf = e.table("carbon_dry", b), e.table("fossil_carbon", b)
        per_t = sum(s * (1.0 - w[k]) * cf[k] * fcf[k] for k, s in shares.items())
        of = e.coefficient("oxidation_incineration", b)
        tonnes_a_year = tonnes_per_day * e.coefficient("wte_operating_hours", b) / 24.0
        return tonnes_a_year * per_t * of * CO2_PER_C

    electric = Range.of(electric_mw)
    tariff = _tariff(regulation, electric, d)
    # MWh x 1000 kWh x cents / 100; the tariff's band moves with the capacity: not monotone
    usd = [mwh(b) * 10 * tariff.usd_cents_per_kwh.at(b) for b in ("central", "low", "high")]
    revenue = Range.spanning(usd[0], usd[1:])
    co2 = Range.of(fossil_co2)
    energy = Range.of(mwh)
    return WteScenario(
        method=(
            "LHV as received (Indonesian moisture) x throughput x net electrical efficiency; "
            "fossil CO2 by IPCC 2006 Vol. 5 Eq 5.2; PLN tariff by regulation"
        ),
        provenance=(
            data_ref(
                e,
                [
                    *(
                        source
                        for n in (*LHV_TABLES, "carbon_dry", "fossil_carbon")
                        for source in e.tables[n].sources
                    ),
                    e.coefficients["water_latent_heat"].source,
                    e.coefficients["wte_net_electrical_efficiency"].source,
                    e.coefficients["wte_operating_hours"].source,
                    e.coefficients["oxidation_incineration"].source,
                    *([e.tables[COMPOSITION_PREFIX + mix_name].source] if mix_name else []),
                ],
            ),
            data_ref(d.tariff, [c.source for c in d.tariff.coefficients.values()]),
        ),
        tonnes_per_day=tonnes_per_day,
        mix_name=mix_name,
        mix=shares,
        moisture=Range.of(lambda b: sum(s * e.table("moisture", b)[k] for k, s in shares.items())),
        lhv_mj_per_kg=Range.of(lhv),
        efficiency=Range.of(eta),
        operating_hours=Range.of(lambda b: e.coefficient("wte_operating_hours", b)),
        thermal_mw=Range.of(thermal_mw),
        net_electric_mw=electric,
        electricity_mwh_per_year=energy,
        fossil_co2_t_per_year=co2,
        fossil_co2_kg_per_mwh=_per_mwh(co2, energy),
        tariff=tariff,
        revenue_usd_per_year=revenue,
        revenue_idr_per_year=_rupiah(revenue, idr_per_usd),
        idr_per_usd=idr_per_usd,
        warnings=_warnings(tonnes_per_day, Range.of(lhv), regulation, d),
    )


def _tariff(regulation: Regulation, capacity: Range, d: EstimateData) -> Tariff:
    t = d.tariff

    def cents(mw: float) -> float:
        if regulation == "perpres_109_2025":
            return t.coefficient("p109_usd_cents")
        if mw <= t.coefficient("p35_small_max_mw"):
            return t.coefficient("p35_small_usd_cents")
        return t.coefficient("p35_large_intercept") - t.coefficient("p35_large_slope") * mw

    if regulation == "perpres_109_2025":
        band = Text(
            id="Perpres 109/2025 Pasal 19: USD 0,20/kWh untuk semua kapasitas",
            en="Perpres 109/2025 Art. 19: USD 0.20/kWh for every capacity",
        )
    elif capacity.central <= t.coefficient("p35_small_max_mw"):
        band = Text(
            id="Perpres 35/2018 Pasal 11 (1) a: sampai dengan 20 MW, USD 13,35 sen/kWh",
            en="Perpres 35/2018 Art. 11 (1) a: up to 20 MW, USD 13.35 cents/kWh",
        )
    else:
        band = Text(
            id="Perpres 35/2018 Pasal 11 (1) b: di atas 20 MW, 14,54 − 0,076 × MW dijual ke PLN",
            en="Perpres 35/2018 Art. 11 (1) b: above 20 MW, 14.54 − 0.076 × MW sold to PLN",
        )
    values = {b: cents(capacity.at(b)) for b in ("low", "central", "high")}
    return Tariff(
        regulation=regulation,
        band=band,
        usd_cents_per_kwh=Range.spanning(values["central"], [values["low"], values["high"]]),
    )


def _per_mwh(co2_t: Range, mwh: Range) -> Range:
    def ratio(num: float, den: float) -> float:
        return num * KG_PER_T / den if den > 0 else math.inf

    central = ratio(co2_t.central, mwh.central)
    ends = [ratio(co2_t.low, mwh.high), ratio(co2_t.high, mwh.low)]
    finite = [v for v in (central, *ends) if math.isfinite(v)]
    if not finite:
        return Range.exact(0.0)
    return Range.spanning(finite[0], finite[1:])


def _rupiah(usd: Range, idr_per_usd: int | None) -> RupiahRange | None:
    if idr_per_usd is None:
        return None
    rate = idr_per_usd
    return RupiahRange(
        central=round(usd.central * rate), low=round(usd.low * rate), high=round(usd.high * rate)
    )


def _warnings(
    tonnes_per_day: float, lhv: Range, regulation: Regulation, d: EstimateData
) -> list[Text]:
    out: list[Text] = []
    floor = d.energy.coefficient("wte_min_lhv")
    if lhv.central < floor:
        out.append(
            Text(
                id=(
                    f"Nilai kalor bawah {number(lhv.central)} MJ/kg di bawah {number(floor, 0)} "
                    "MJ/kg: pembakaran butuh bahan bakar pendukung atau pengeringan (Bank Dunia "
                    "1999)."
                ),
                en=(
                    f"Lower heating value {lhv.central:.1f} MJ/kg is below {floor:.0f} MJ/kg: "
                    "the grate needs support fuel or drying (World Bank 1999)."
                ),
            )
        )
    minimum = d.tariff.coefficient("p109_min_tonnes_per_day")
    if regulation == "perpres_109_2025" and tonnes_per_day < minimum:
        out.append(
            Text(
                id=(
                    "Perpres 109/2025: PSEL hanya untuk pasokan minimal "
                    f"{thousands(round(minimum))} t/hari."
                ),
                en=f"Perpres 109/2025: a PSEL needs at least {minimum:,.0f} t/day of waste.",
            )
        )
    if regulation == "perpres_35_2018":
        out.append(
            Text(
                id="Perpres 35/2018 dicabut oleh Perpres 109/2025 (USD 0,20/kWh).",
                en="Perpres 35/2018 was revoked by Perpres 109/2025 (USD 0.20/kWh).",
            )
        )
    return out
