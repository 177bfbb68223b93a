"""What every rendering of the monthly report says besides its table: the column headings, the
notes above the table, the month's title, kg exactly for machines."""

from __future__ import annotations

from wastebank.formats import MONTH_NAMES_ID, tanggal
from wastebank.reports.monthly import MonthlyReport

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


def kg_plain(grams: int) -> str:
    """``1234.500``: exact, dot decimals (machine-readable)."""
    sign = "-" if grams < 0 else ""
    whole, rest = divmod(abs(grams), 1000)
    return f"{sign}{whole}.{rest:03d}"


def opt(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def month_title(report: MonthlyReport) -> str:
    return f"{MONTH_NAMES_ID[report.start.month - 1]} {report.start.year}"


def notes(report: MonthlyReport) -> list[tuple[str, str]]:
    gen = report.generation
    gen_text = (
        f"{gen.population:,} jiwa x {gen.kg_per_capita_day} kg/orang/hari "
        f"= {kg_plain(report.generation_g or 0)} kg; sumber / source: {gen.source}"
        if gen
        else "tidak diatur / not configured (WASTEBANK_REPORTS__*)"
    )
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
            ("buku besar, setoran batal tidak dihitung / the ledger, voided deposits excluded"),
        ),
        ("Timbulan (estimasi) / Generation (estimated)", gen_text),
        (
            "CO2e & energi / CO2e & energy",
            report.estimator or "belum tersedia / not available (wastebank.estimates)",
        ),
        (
            "Terukur / Measured",
            "ditimbang / weighed on a scale; estimasi / estimated: entri manual / manual entries",
        ),
        ("Ke TPA (estimasi) / TPA-bound (estimated)", tpa_text(report)),
    ]


def tpa_text(report: MonthlyReport) -> str:
    t = report.diversion_total
    if t is None:
        return "tidak dihitung / not computed"
    rate = "-" if t.rate is None else f"{100 * t.rate:.2f} %"
    return (
        f"{t.tpa_bound_kg / 1000:.3f} t, {t.pickups} pengangkutan TPS / TPS pickups "
        "(volume kontainer x tingkat isi x berat jenis / container volume x fill x bulk "
        f"density); tingkat pengalihan / diversion rate {rate} "
        "(bank sampah / (bank sampah + TPA) / waste banks / (waste banks + TPA-bound))"
    )


DIVERSION_HEADER = (
    "kecamatan / sub-district",
    "bank sampah kg / waste banks kg",
    "ke TPA kg (estimasi) / TPA-bound kg (estimated)",
    "pengangkutan TPS / TPS pickups",
    "tingkat pengalihan / diversion rate",
)
