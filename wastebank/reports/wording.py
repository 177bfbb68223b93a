"""What every rendering of the monthly report says besides its table: the column headings, the
notes above the table, the month's title, and the one rule for writing a mass (kg or t).

Everything a person reads is in id-ID formats (:mod:`wastebank.formats`: ``1.234,5``,
``23,27 %``); the CSV's numbers follow its dialect (:mod:`.csvfile`), the XLSX's are numbers.
"""

from __future__ import annotations

from typing import Literal

from wastebank import formats
from wastebank.formats import MONTH_NAMES_ID, number, percent, tanggal, thousands
from wastebank.reports.monthly import MonthlyReport

MassUnit = Literal["kg", "t"]


# The mass rule is :func:`wastebank.formats.mass_unit`'s, the same as the pages': a report's
# table column takes the unit of its largest figure (named in its heading, the cells without
# it), a figure in a sentence its own. Data cells of the XLSX and the CSV are always kg (the
# heading says so): a spreadsheet sums them.
def mass_unit(*grams: float) -> MassUnit:
    """The unit of a column whose figures are ``grams``."""
    return formats.mass_unit(round(max((abs(g) for g in grams), default=0)))


def mass_number(grams: float, unit: MassUnit) -> str:
    """A column's cell: the figure in ``unit``, without it."""
    return formats.mass(round(grams), unit).removesuffix(f" {unit}")


def mass(grams: float) -> str:
    """A figure in a sentence, in its own unit: ``88.298,0 t``, ``1,3 kg``."""
    return formats.mass(round(grams))


CSV_HEADER = (
    "bulan / month",
    "kecamatan / sub-district",
    "kategori / category",
    "nama kategori / category name",
    "kelas SIPSN / SIPSN class",
    "setoran / deposits",
    "berat kg / weight kg",
    "terukur kg / measured kg",
    "estimasi kg / estimated kg",
    "pengurangan % timbulan / reduction % of generation",
    "CO2e terhindar kg (estimasi) / CO2e avoided kg (estimated)",
    "potensi energi kWh (estimasi) / energy potential kWh (estimated)",
)


def month_title(report: MonthlyReport) -> str:
    return f"{MONTH_NAMES_ID[report.start.month - 1]} {report.start.year}"


NOT_CONFIGURED = (
    "belum diatur: jumlah penduduk dan laju timbulan kota (lihat docs/reports.md) / not "
    "configured: the city's population and generation rate"
)
NO_ESTIMATOR = "belum tersedia / not available"


def generation_text(report: MonthlyReport) -> str:
    gen = report.generation
    if gen is None:
        return NOT_CONFIGURED
    return (
        f"{thousands(gen.population)} jiwa x {number(gen.kg_per_capita_day, 2)} kg/orang/hari "
        f"= {mass(report.generation_g or 0)}; sumber / source: {gen.source}"
    )


def tpa_text(report: MonthlyReport) -> str:
    t = report.diversion_total
    if t is None:
        return "tidak dihitung / not computed"
    rate = percent(None if t.rate is None else 100 * t.rate, 2)
    return (
        f"{mass(t.tpa_bound_kg * 1000)}, {thousands(t.pickups)} pengangkutan TPS / TPS pickups "
        "(volume kontainer x tingkat isi x berat jenis / container volume x fill x bulk "
        f"density); tingkat pengalihan / diversion rate {rate} "
        "(bank sampah / (bank sampah + TPA) / waste banks / (waste banks + TPA-bound))"
    )


def notes(report: MonthlyReport) -> list[tuple[str, str]]:
    """(label, text) above the table, the same in the PDF and the XLSX."""
    return [
        ("Kota / City", f"{report.city_name} ({report.city_code})"),
        ("Bulan / Month", f"{month_title(report)} ({report.month})"),
        (
            "Periode / Period",
            f"{tanggal(report.start)} - {tanggal(report.end)}, waktu setempat / local time "
            f"{report.zone} ({report.timezone})",
        ),
        (
            "Sumber data / Data source",
            "buku besar, setoran batal tidak dihitung / the ledger, voided deposits excluded",
        ),
        ("Timbulan (estimasi) / Generation (estimated)", generation_text(report)),
        ("CO2e & energi / CO2e & energy", report.estimator or NO_ESTIMATOR),
        (
            "Terukur / Measured",
            "ditimbang / weighed on a scale; estimasi / estimated: entri manual / manual entries",
        ),
        ("Ke TPA (estimasi) / TPA-bound (estimated)", tpa_text(report)),
        ("Satuan / Units", UNITS_NOTE),
    ]


UNITS_NOTE = (
    "t dari 10 t ke atas, kg di bawahnya; satu kolom satu satuan / t from 10 t up, kg below; "
    "one unit per column"
)

DIVERSION_HEADER = (
    "kecamatan / sub-district",
    "bank sampah kg / waste banks kg",
    "ke TPA kg (estimasi) / TPA-bound kg (estimated)",
    "pengangkutan TPS / TPS pickups",
    "tingkat pengalihan / diversion rate",
)
