"""The monthly report as a printable A4 landscape PDF: the notes, the table with Indonesian number
formats and the total, and the diversion from the TPA by kecamatan (:mod:`wastebank.pdfdoc`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from wastebank.formats import kg, latin1, number, percent, tanggal_waktu
from wastebank.pdfdoc import bold, document, table
from wastebank.reports.monthly import DiversionRow, MonthlyReport, MonthlyRow
from wastebank.reports.wording import month_title, notes

if TYPE_CHECKING:
    from fpdf import FPDF

TABLE_HEADINGS = (
    "Kecamatan",
    "Kategori / Category",
    "Setoran / Deposits",
    "Berat / Weight",
    "Terukur / Measured",
    "Estimasi / Estimated",
    "% timbulan / % generation",
    "CO2e terhindar (est.) kg",
    "Energi (est.) kWh",
)
DIVERSION_HEADINGS = (
    "Kecamatan",
    "Bank sampah / Waste banks",
    "Ke TPA (est.) / TPA-bound (est.)",
    "Pengangkutan / Pickups",
    "Pengalihan / Diversion",
)


def monthly_pdf(report: MonthlyReport) -> bytes:
    """Printable A4 landscape: notes, the table with Indonesian number formats, the total."""
    printed = tanggal_waktu(report.generated_at, ZoneInfo(report.timezone))
    pdf = document(
        f"Laporan bulanan DLH {report.city_name} {report.month}",
        footer=f"{report.city_name} {report.month} - dicetak / printed {printed}",
        orientation="landscape",
    )
    _head(pdf, report)
    _table(pdf, report)
    if report.diversion_total is not None:
        _diversion(pdf, report.diversion, report.diversion_total)
    return bytes(pdf.output())


def _head(pdf: FPDF, report: MonthlyReport) -> None:
    """The title and the notes (the generation estimate in Indonesian number formats)."""
    pdf.set_font("helvetica", "B", 13)
    pdf.cell(
        0,
        7,
        latin1(f"LAPORAN BULANAN PENGURANGAN SAMPAH - {month_title(report).upper()}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("helvetica", size=9)
    pdf.cell(0, 5, "Monthly waste reduction report (waste banks)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=8)
    for label, value in notes(report):
        if label.startswith("Timbulan") and report.generation:
            g = report.generation
            value = (
                f"{number(g.population, 0)} jiwa x {number(g.kg_per_capita_day, 2)} "
                f"kg/orang/hari = {kg(report.generation_g or 0)}; sumber / source: {g.source}"
            )
        pdf.cell(70, 4.5, latin1(label))
        pdf.multi_cell(0, 4.5, latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _table(pdf: FPDF, report: MonthlyReport) -> None:
    """A row per kecamatan x category, the total in bold."""
    widths = (34, 56, 20, 28, 28, 28, 26, 26, 27)
    align = ("LEFT", "LEFT", *("RIGHT",) * 7)
    with table(pdf, widths, align, width=273) as t:
        t.row([latin1(h) for h in TABLE_HEADINGS])
        for item in [*report.rows, report.total]:
            t.row(_row(item), style=bold() if item is report.total else None)
    if not report.rows:
        pdf.cell(0, 6, "(tidak ada setoran / no deposits)", new_x="LMARGIN", new_y="NEXT")


def _row(item: MonthlyRow) -> list[str]:
    name = f"{item.category_name_id} / {item.category_name_en}" if item.category else ""
    return [
        latin1(item.kecamatan),
        latin1(name),
        number(item.deposits, 0),
        kg(item.net_g),
        kg(item.measured_g),
        kg(item.estimated_g),
        percent(item.share_pct, 4),
        number(item.co2e_avoided_kg, 1),
        number(item.energy_kwh, 1),
    ]


def _diversion(pdf: FPDF, rows: list[DiversionRow], total: DiversionRow) -> None:
    """Per kecamatan: diverted by the waste banks against TPA-bound, the total in bold."""
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 9)
    pdf.cell(
        0,
        5,
        "Pengalihan dari TPA per kecamatan / Diversion from the TPA by sub-district",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font("helvetica", size=8)
    widths = (60, 40, 48, 34, 34)
    align = ("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    with table(pdf, widths, align, width=216, align="LEFT") as t:
        t.row([latin1(h) for h in DIVERSION_HEADINGS])
        for d in [*rows, total]:
            t.row(
                [
                    latin1(d.kecamatan),
                    kg(d.diverted_g),
                    f"{number(d.tpa_bound_kg, 1)} kg",
                    number(d.pickups, 0),
                    percent(None if d.rate is None else 100 * d.rate, 2),
                ],
                style=bold() if d is total else None,
            )
