"""The monthly report as a printable A4 PDF, portrait or landscape: the notes; deposits by
kecamatan and category; the diversion from the TPA by kecamatan, with its coverage; the
estimates by category (CO2e in its parts, the energy recycling saved, the waste-to-energy
potential), each central first with its range, and what each is in words.

Every table's columns are sized from the page's width (:func:`wastebank.pdfdoc.fitted_table`),
every number is in id-ID format and every mass follows the report's one rule
(:func:`wastebank.reports.wording.mass_unit`: a column in t or in kg, named in its heading)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast
from zoneinfo import ZoneInfo

from wastebank.estimates import FIGURES, IMPACT_FIELDS
from wastebank.formats import latin1, percent, tanggal_waktu, thousands
from wastebank.pdfdoc import document, fitted_table
from wastebank.reports.monthly import MonthlyReport
from wastebank.reports.wording import (
    NO_ESTIMATOR,
    coverage_text,
    estimate_heading,
    mass_number,
    mass_unit,
    month_title,
    notes,
    range_text,
    rate_text,
    reasons,
)

if TYPE_CHECKING:
    from fpdf import FPDF

Orientation = Literal["portrait", "landscape"]
ORIENTATIONS: tuple[str, ...] = ("landscape", "portrait")
NOTE_LABEL_SHARE = 0.3  # of the page's width, for a note's label


def monthly_pdf(report: MonthlyReport, orientation: Orientation = "landscape") -> bytes:
    """Printable A4 (``orientation``): notes, then the tables, numbers in id-ID formats."""
    printed = tanggal_waktu(report.generated_at, ZoneInfo(report.timezone))
    pdf = document(
        f"Laporan bulanan DLH {report.city_name} {report.month}",
        footer=f"{report.city_name} {report.month} - dicetak / printed {printed}",
        orientation=orientation,
    )
    _head(pdf, report)
    _deposits(pdf, report)
    if report.diversion_total is not None:
        _diversion(pdf, report)
    _estimates(pdf, report)
    return bytes(pdf.output())


KEEP_WITH_NEXT_MM = 30  # a table's heading starts a new page when less than this is left


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.get_y() > pdf.page_break_trigger - KEEP_WITH_NEXT_MM:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 9)
    pdf.multi_cell(0, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")


def _head(pdf: FPDF, report: MonthlyReport) -> None:
    """The title and the notes, each label beside its text."""
    pdf.set_font("helvetica", "B", 13)
    title = f"LAPORAN BULANAN PENGURANGAN SAMPAH - {month_title(report).upper()}"
    pdf.multi_cell(0, 7, latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    pdf.multi_cell(
        0, 5, "Monthly waste reduction report (waste banks)", new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("helvetica", size=8)
    label_w = pdf.epw * NOTE_LABEL_SHARE
    for label, value in notes(report):
        top = pdf.get_y()
        height = cast(
            float,
            pdf.multi_cell(
                label_w, 4.5, latin1(label), new_x="RIGHT", new_y="TOP", output="HEIGHT"
            ),
        )
        pdf.multi_cell(0, 4.5, latin1(value), new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), top + height))


def _deposits(pdf: FPDF, report: MonthlyReport) -> None:
    """A row per kecamatan x category, the total in bold."""
    _heading(pdf, "Setoran per kecamatan dan kategori / Deposits by sub-district and category")
    items = [*report.rows, report.total]
    unit = mass_unit(*(r.net_g for r in items))
    rows = [
        [
            "Kecamatan",
            "Kategori / Category",
            "Setoran / Deposits",
            f"Berat / Weight ({unit})",
            f"Terukur / Measured ({unit})",
            f"Estimasi / Estimated ({unit})",
            "% timbulan / % of generation",
        ]
    ]
    for item in items:
        name = f"{item.category_name_id} / {item.category_name_en}" if item.category else ""
        rows.append(
            [
                item.kecamatan,
                name,
                thousands(item.deposits),
                mass_number(item.net_g, unit),
                mass_number(item.measured_g, unit),
                mass_number(item.estimated_g, unit),
                percent(item.share_pct, 4),
            ]
        )
    fitted_table(
        pdf,
        rows,
        weights=(16, 30, 9, 12, 12, 12, 10),
        text_align=("LEFT", "LEFT", *("RIGHT",) * 5),
        bold_rows=(len(rows) - 1,),
    )
    if not report.rows:
        pdf.cell(0, 6, "(tidak ada setoran / no deposits)", new_x="LMARGIN", new_y="NEXT")


def _diversion(pdf: FPDF, report: MonthlyReport) -> None:
    """Per kecamatan: diverted by the waste banks against TPA-bound, the total in bold."""
    total = report.diversion_total
    assert total is not None
    items = [*report.diversion, total]
    _heading(pdf, "Pengalihan dari TPA per kecamatan / Diversion from the TPA by sub-district")
    unit = mass_unit(*(d.diverted_g for d in items), *(d.tpa_bound_kg * 1000 for d in items))
    rows = [
        [
            "Kecamatan",
            f"Bank sampah / Waste banks ({unit})",
            f"Ke TPA (estimasi) / TPA-bound (estimated) ({unit})",
            "Pengangkutan TPS / TPS pickups",
            "Pengalihan / Diversion",
        ]
    ]
    for d in items:
        rows.append(
            [
                d.kecamatan,
                mass_number(d.diverted_g, unit),
                mass_number(d.tpa_bound_kg * 1000, unit),
                thousands(d.pickups),
                rate_text(report, d.rate),
            ]
        )
    fitted_table(
        pdf,
        rows,
        weights=(24, 16, 20, 12, 12),
        text_align=("LEFT", *("RIGHT",) * 4),
        bold_rows=(len(rows) - 1,),
    )
    _small(pdf, f"Cakupan / Coverage: {coverage_text(report)}")


CO2E_FIELDS = (
    "net_co2e_kg",
    "landfill_ch4_co2e_kg",
    "recycling_credit_co2e_kg",
    "composting_co2e_kg",
)
ENERGY_FIELDS = ("recycling_energy_saved_gj", "recycling_energy_saved_kwh_eq", "wte_potential_kwh")


def _estimates(pdf: FPDF, report: MonthlyReport) -> None:
    """Per category (every kecamatan) and in all: CO2e in its parts, then the energy figures,
    each the central estimate with its range; what each figure is, in words, below."""
    if report.total.impact is None:
        _heading(pdf, "Estimasi / Estimates")
        _small(pdf, f"CO2e & energi / CO2e & energy: {NO_ESTIMATOR}")
        return
    items = [*report.by_category(), ("Jumlah / Total", report.total.net_g, report.total.impact)]
    unit = mass_unit(*(grams for _, grams, _ in items))
    for title, fields in (
        ("Estimasi CO2e per kategori / Estimated CO2e by category", CO2E_FIELDS),
        ("Estimasi energi per kategori / Estimated energy by category", ENERGY_FIELDS),
    ):
        _heading(pdf, title)
        rows = [["Kategori / Category", f"Berat / Weight ({unit})"]]
        rows[0] += [estimate_heading(f) for f in fields]
        for name, grams, impact in items:
            rows.append(
                [
                    name,
                    mass_number(grams, unit),
                    *(range_text(getattr(impact, f, None), FIGURES[f].unit) for f in fields),
                ]
            )
        fitted_table(
            pdf,
            rows,
            weights=(24, 10, *(16,) * len(fields)),
            text_align=("LEFT", *("RIGHT",) * (len(fields) + 1)),
            bold_rows=(len(rows) - 1,),
        )
    pdf.ln(1)
    _small(
        pdf, "Nilai tengah, lalu rentang rendah s.d. tinggi / the central figure, then its range."
    )
    for field in IMPACT_FIELDS:
        f = FIGURES[field]
        _small(pdf, f"{estimate_heading(field)}: {f.basis.id} / {f.basis.en}")
    for field, why in report.total.impact.not_estimated.items():
        _small(pdf, f"Tidak diestimasi / Not estimated - {estimate_heading(field)}: {reasons(why)}")


def _small(pdf: FPDF, text: str) -> None:
    pdf.set_font("helvetica", size=7)
    pdf.multi_cell(0, 3.6, latin1(text), new_x="LMARGIN", new_y="NEXT")
