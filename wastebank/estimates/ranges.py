"""Estimates as ranges, and what one diversion is estimated to be worth (:class:`Impact`).

Every figure is computed three times: with each coefficient at its central value, and at the end
of its range that lowers the figure (``low``) or raises it (``high``); see docs/estimates.md,
"Uncertainty". The three travel together as a :class:`Range`, central first."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Bound = Literal["low", "central", "high"]
BOUNDS: tuple[Bound, ...] = ("central", "low", "high")
_TOLERANCE = 1e-9


def flip(bound: Bound) -> Bound:
    """The other end: a coefficient that lowers a figure is taken at its high end for the
    figure's low."""
    return "high" if bound == "low" else "low" if bound == "high" else "central"


class Range(BaseModel):
    """An estimate at its coefficients' central values (``central``) and the lowest and highest
    it can be with every coefficient within its range (``low``, ``high``). JSON keeps the order
    central, low, high."""

    model_config = ConfigDict(frozen=True)

    central: float
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        for v in (self.central, self.low, self.high):
            if not math.isfinite(v):
                raise ValueError(f"a range must be finite, got {v!r}")
        slack = _TOLERANCE * max(1.0, abs(self.central))
        if not (self.low - slack <= self.central <= self.high + slack):
            raise ValueError(
                f"a range needs low <= central <= high, got {self.low}, {self.central}, {self.high}"
            )
        return self

    @classmethod
    def exact(cls, value: float) -> Range:
        """A figure without uncertainty (an input, or a definition)."""
        return cls(central=value, low=value, high=value)

    @classmethod
    def of(cls, compute: Callable[[Bound], float]) -> Range:
        """``compute`` at each bound; ``compute("low")`` must be the low end."""
        return cls(central=compute("central"), low=compute("low"), high=compute("high"))

    @classmethod
    def spanning(cls, central: float, others: Iterable[float]) -> Range:
        """``central`` and the smallest and largest of it and ``others`` (for a figure whose
        direction in a coefficient is not known in advance)."""
        values = [central, *others]
        return cls(central=central, low=min(values), high=max(values))

    def at(self, bound: Bound) -> float:
        return self.low if bound == "low" else self.high if bound == "high" else self.central

    def __add__(self, other: Range) -> Range:
        return Range(
            central=self.central + other.central,
            low=self.low + other.low,
            high=self.high + other.high,
        )

    def __sub__(self, other: Range) -> Range:
        # the low of a difference takes the high of what is subtracted
        return Range(
            central=self.central - other.central,
            low=self.low - other.high,
            high=self.high - other.low,
        )

    def scaled(self, factor: float) -> Range:
        """Times a non-negative exact factor (a unit conversion)."""
        if not (math.isfinite(factor) and factor >= 0):
            raise ValueError("a range is scaled by a finite factor >= 0")
        return Range(central=self.central * factor, low=self.low * factor, high=self.high * factor)


def total(ranges: Iterable[Range | None]) -> Range | None:
    """The sum of the ranges given; None when none is."""
    present = [r for r in ranges if r is not None]
    if not present:
        return None
    out = present[0]
    for r in present[1:]:
        out = out + r
    return out


class Text(BaseModel):
    """User-facing text, Bahasa Indonesia first."""

    model_config = ConfigDict(frozen=True)

    id: str
    en: str


class Figure(BaseModel):
    """What a field of :class:`Impact` is: its unit, a short label and its basis in words."""

    model_config = ConfigDict(frozen=True)

    unit: str
    label: Text
    basis: Text


IMPACT_FIELDS = (
    "net_co2e_kg",
    "landfill_ch4_co2e_kg",
    "recycling_credit_co2e_kg",
    "composting_co2e_kg",
    "recycling_energy_saved_gj",
    "recycling_energy_saved_kwh_eq",
    "wte_potential_kwh",
)

FIGURES: Mapping[str, Figure] = {
    "net_co2e_kg": Figure(
        unit="kg CO2e",
        label=Text(id="CO2e terhindar (bersih)", en="CO2e avoided (net)"),
        basis=Text(
            id=(
                "Estimasi: CH4 TPA terhindar (seumur timbunan) + kredit daur ulang − emisi "
                "pengomposan. Bukan emisi bulan ini: metana TPA terjadi selama puluhan tahun."
            ),
            en=(
                "Estimated: landfill CH4 avoided (over the waste's lifetime) + recycling credit "
                "− composting emissions. Not this month's emission: landfill methane is emitted "
                "over decades."
            ),
        ),
    ),
    "landfill_ch4_co2e_kg": Figure(
        unit="kg CO2e",
        label=Text(id="CH4 TPA terhindar", en="Landfill methane avoided"),
        basis=Text(
            id=(
                "Metana yang akan dihasilkan sampah ini di TPA sepanjang umur timbunannya "
                "(IPCC 2006 Vol. 5 Bab 3, peluruhan orde satu), dihitung ke bulan pengalihan."
            ),
            en=(
                "Methane this waste would have emitted at the TPA over its whole decay "
                "(IPCC 2006 Vol. 5 Ch. 3, first-order decay), committed to the month it was "
                "diverted."
            ),
        ),
    ),
    "recycling_credit_co2e_kg": Figure(
        unit="kg CO2e",
        label=Text(id="Kredit daur ulang", en="Recycling credit"),
        basis=Text(
            id=(
                "Emisi produksi bahan baru yang digantikan bahan daur ulang (US EPA WARM v16, "
                "indikatif: dasar AS)."
            ),
            en=(
                "Emissions of virgin production replaced by the recycled material (US EPA "
                "WARM v16, indicative: US basis)."
            ),
        ),
    ),
    "composting_co2e_kg": Figure(
        unit="kg CO2e",
        label=Text(id="Emisi pengomposan", en="Composting emissions"),
        basis=Text(
            id="CH4 dan N2O dari pengomposan sampah organik (IPCC 2006 Tabel 4.1); dikurangkan.",
            en="CH4 and N2O from composting the organics (IPCC 2006 Table 4.1); subtracted.",
        ),
    ),
    "recycling_energy_saved_gj": Figure(
        unit="GJ",
        label=Text(id="Energi dihemat daur ulang", en="Energy saved by recycling"),
        basis=Text(
            id=(
                "Energi produksi bahan baru dikurangi energi daur ulang (US EPA 2005, "
                "worldsteel; indikatif). Energi primer, bukan listrik."
            ),
            en=(
                "Virgin minus recycled production energy (US EPA 2005, worldsteel; "
                "indicative). Primary energy, not electricity."
            ),
        ),
    ),
    "recycling_energy_saved_kwh_eq": Figure(
        unit="kWh-eq",
        label=Text(id="Energi dihemat (setara kWh)", en="Energy saved (kWh-equivalent)"),
        basis=Text(
            id=(
                "Energi dihemat daur ulang dalam GJ × 277,78: setara kWh energi primer, bukan "
                "listrik."
            ),
            en=(
                "Energy saved by recycling in GJ × 277,78: kWh-equivalent of primary energy, "
                "not electricity."
            ),
        ),
    ),
    "wte_potential_kwh": Figure(
        unit="kWh",
        label=Text(id="Potensi listrik PLTSa", en="Waste-to-energy potential"),
        basis=Text(
            id=(
                "Listrik bersih yang bisa dihasilkan jika sampah ini dibakar di PLTSa (nilai "
                "kalor bawah sebagaimana diterima × efisiensi listrik bersih). Potensi, bukan "
                "energi yang dihasilkan bank sampah."
            ),
            en=(
                "Net electricity this waste could give if burned in a waste-to-energy plant "
                "(lower heating value as received × net electrical efficiency). A potential, "
                "not energy the waste bank produced."
            ),
        ),
    ),
}


class Impact(BaseModel):
    """What diverting ``grams`` of waste is estimated to be worth, each figure a :class:`Range`
    (see :data:`FIGURES` for each field's unit, label and basis). A figure is None when no
    factor applies to the material (``not_estimated`` says why); a figure of zero is a factor
    that gives zero (plastics avoid no landfill methane). ``net_co2e_kg`` counts a missing part
    as zero and is None only when the material is unknown."""

    model_config = ConfigDict(frozen=True)

    basis: Literal["estimated"] = "estimated"
    grams: int
    net_co2e_kg: Range | None
    landfill_ch4_co2e_kg: Range | None
    recycling_credit_co2e_kg: Range | None
    composting_co2e_kg: Range | None
    recycling_energy_saved_gj: Range | None
    recycling_energy_saved_kwh_eq: Range | None
    wte_potential_kwh: Range | None
    not_estimated: dict[str, str] = {}  # field -> why it is None (per material when summed)

    @classmethod
    def zero(cls) -> Impact:
        z = Range.exact(0.0)
        return cls(grams=0, **{name: z for name in IMPACT_FIELDS})

    @classmethod
    def unknown(cls, grams: int, reason: str) -> Impact:
        """No figure at all (a material class the data files do not know), and why."""
        nothing: dict[str, Range | None] = dict.fromkeys(IMPACT_FIELDS)
        return cls(grams=grams, not_estimated=dict.fromkeys(IMPACT_FIELDS, reason), **nothing)

    def __add__(self, other: Impact) -> Impact:
        notes = dict(self.not_estimated)
        for k, v in other.not_estimated.items():
            notes[k] = v if k not in notes or notes[k] == v else f"{notes[k]}; {v}"
        return Impact(
            grams=self.grams + other.grams,
            not_estimated=notes,
            **{name: total([getattr(self, name), getattr(other, name)]) for name in IMPACT_FIELDS},
        )


def sum_impacts(impacts: Iterable[Impact]) -> Impact:
    """The total of several impacts (e.g. every category of a month): each figure the sum of
    the parts that have it."""
    out: Impact | None = None
    for i in impacts:
        out = i if out is None else out + i
    return out if out is not None else Impact.zero()
