"""What every rendering of the monthly report says besides its table: the column headings, the
notes above the table, the month's title, and the one rule for writing a mass (kg or t).

Everything a person reads is in id-ID formats (:mod:`wastebank.formats`: ``1.234,5``,
``23,27 %``); the CSV's numbers follow its dialect (:mod:`.csvfile`), the XLSX's are numbers.
"""

from __future__ import annotations

from typing import Literal

from wastebank import formats
from wastebank.estimates import FIGURES, IMPACT_FIELDS, Range
from wastebank.formats import MONTH_NAMES_ID, number, percent, tanggal, thousands
from wastebank.ledger import clock_note
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


# An estimate's three figures, central first (docs/estimates.md: every coefficient at its
# central value, then at the ends of its range that lower or raise the figure).
RANGE_PARTS = (
    ("central", "tengah", "central"),
    ("low", "rendah", "low"),
    ("high", "tinggi", "high"),
)
# decimals of an estimate by its unit, as people read it
PLACES = {"kg CO2e": 1, "GJ": 2, "kWh-eq": 0, "kWh": 1}


def range_text(r: Range | None, unit: str) -> str:
    """``1.146,0 (860,2 s.d. 1.433,1)``: the central figure, its range after; ``-`` for none."""
    if r is None:
        return "-"
    places = PLACES.get(unit, 1)
    central = number(r.central, places)
    if r.low == r.high:
        return central
    return f"{central} ({number(r.low, places)} s.d. {number(r.high, places)})"


def reasons(text: str) -> str:
    """Why a figure was not estimated, each reason once (a total repeats its parts')."""
    return "; ".join(dict.fromkeys(part.strip() for part in text.split(";") if part.strip()))


def estimate_heading(field: str) -> str:
    """``CO2e terhindar (bersih) / CO2e avoided (net) (kg CO2e)``."""
    f = FIGURES[field]
    return f"{f.label.id} / {f.label.en} ({f.unit})"


# no comma or semicolon in a heading: a CSV reader splitting by hand keeps its columns
ESTIMATE_HEADER = tuple(
    f"{FIGURES[field].label.id} {FIGURES[field].unit} estimasi {part_id} / "
    f"{FIGURES[field].label.en} {FIGURES[field].unit} estimated {part_en}"
    for field in IMPACT_FIELDS
    for _, part_id, part_en in RANGE_PARTS
)

CSV_HEADER = (
    "bulan / month",
    "kecamatan / sub-district",
    "kategori / category",
    "nama kategori / category name",
    "kelas SIPSN / SIPSN class",
    "nama kelas SIPSN / SIPSN class name",
    "setoran / deposits",
    "berat kg / weight kg",
    "terukur kg / measured kg",
    "estimasi kg / estimated kg",
    "pengurangan % timbulan / reduction % of generation",
    *ESTIMATE_HEADER,
)


def estimate_values(impact: object) -> list[float | None]:
    """The :data:`ESTIMATE_HEADER` columns of an impact (None: no impact, or no figure)."""
    out: list[float | None] = []
    for field in IMPACT_FIELDS:
        r = getattr(impact, field, None) if impact is not None else None
        out += [None if r is None else getattr(r, part) for part, _, _ in RANGE_PARTS]
    return out


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


NOT_ENOUGH_DATA = "belum cukup data / not enough data"


def rate_text(report: MonthlyReport, rate: float | None) -> str:
    """A diversion rate (0..1) as ``23,27 %``, or :data:`NOT_ENOUGH_DATA` when the report's
    coverage is below [reports] ``diversion_coverage`` (then no rate is the city's)."""
    if report.coverage is not None and not report.coverage.enough:
        return NOT_ENOUGH_DATA
    return percent(None if rate is None else 100 * rate, 2)


def coverage_text(report: MonthlyReport) -> str:
    cov = report.coverage
    if cov is None:
        return "-"
    if cov.tps_in_city:
        where = (
            f"{cov.tps_reporting} dari {cov.tps_in_city} TPS kota dengan pengangkutan teramati / "
            f"{cov.tps_reporting} of the city's {cov.tps_in_city} TPS with pickups observed"
        )
    else:
        where = (
            f"{cov.tps_reporting} TPS dengan pengangkutan teramati; jumlah TPS kota belum diisi / "
            f"{cov.tps_reporting} TPS with pickups observed; the city's number of TPS not entered"
        )
    text = f"{where}; {thousands(cov.pickups)} pengangkutan / pickups"
    return text if cov.enough or not cov.reason else f"{text}. {NOT_ENOUGH_DATA}: {cov.reason}"


def tpa_text(report: MonthlyReport) -> str:
    t = report.diversion_total
    if t is None:
        return "tidak dihitung / not computed"
    rate = rate_text(report, t.rate)
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
        ("Cakupan pengalihan / Diversion coverage", coverage_text(report)),
        (
            "Rentang / Ranges",
            "estimasi: nilai tengah, lalu rentang rendah s.d. tinggi / estimates: the central "
            "figure, then its low to high range",
        ),
        ("Satuan / Units", UNITS_NOTE),
        *_clock_note(report),
    ]


def _clock_note(report: MonthlyReport) -> list[tuple[str, str]]:
    """The month's deposits stamped before their gateway's clock was synchronized, and those
    stamped ahead of when the ledger received them (docs/operations.md, "Clock honesty"), when
    there are any."""
    counts = ((report.unsynced_clock_deposits, False), (report.clock_ahead_deposits, True))
    said = [clock_note(n, ahead=ahead) for n, ahead in counts if n > 0]
    return [("Jam gateway / Gateway clock", "; ".join(said))] if said else []


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
