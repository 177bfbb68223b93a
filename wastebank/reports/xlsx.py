"""The monthly report as an XLSX workbook: sheet ``Laporan`` (notes, the key figures, the table,
the total; each estimate as its central, low and high figures), sheet ``Per kategori`` (kg per
category and a bar chart of it), sheet ``Pengalihan`` (waste banks against TPA-bound, by
kecamatan), sheet ``Estimasi`` (the estimates by category and what each is, in words). Every
figure is a number cell with a number format (Excel shows it in the reader's locale: ``1.234,5``
in Indonesian), never a text; every text a string cell, never a formula
(:func:`wastebank.formats.xlsx_text_cells`)."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from wastebank.estimates import FIGURES, IMPACT_FIELDS
from wastebank.formats import xlsx_text_cells
from wastebank.reports.monthly import DiversionRow, MonthlyReport, MonthlyRow
from wastebank.reports.scope import sipsn_name
from wastebank.reports.wording import (
    CSV_HEADER,
    DIVERSION_HEADER,
    ESTIMATE_HEADER,
    NOT_ENOUGH_DATA,
    RANGE_PARTS,
    estimate_heading,
    estimate_values,
    notes,
    reasons,
)

if TYPE_CHECKING:
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

KG_FORMAT = "#,##0.000"
ESTIMATE_FORMAT = "#,##0.00"
# The number format of each column of the ``Laporan`` table (None: text).
TABLE_FORMATS: tuple[str | None, ...] = (
    None,
    None,
    None,
    None,
    None,
    "#,##0",
    KG_FORMAT,
    KG_FORMAT,
    KG_FORMAT,
    "0.0000%",
    *(ESTIMATE_FORMAT,) * len(ESTIMATE_HEADER),
)
TABLE_WIDTHS = (22, 14, 32, 16, 22, 12, 16, 16, 16, 16, *(18,) * len(ESTIMATE_HEADER))
DIVERSION_FORMATS = ((2, KG_FORMAT), (3, "#,##0.0"), (4, "#,##0"), (5, "0.00%"))
DIVERSION_WIDTHS = (30, 20, 26, 18, 20)


def monthly_xlsx(report: MonthlyReport) -> bytes:
    """Sheet ``Laporan`` (notes, the table, the total: number formats), sheet ``Per kategori``
    (kg per category and a bar chart of it)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Laporan"
    header_row = _notes_rows(ws, report) + 1
    _table(ws, report, header_row)
    _by_category(wb, report)
    _diversion(wb, report)
    _estimates(wb, report)
    out = io.BytesIO()
    xlsx_text_cells(wb).save(out)
    return out.getvalue()


def _notes_rows(ws: Worksheet, report: MonthlyReport) -> int:
    """The title, the notes and the key figures (numbers), from row 1; returns the first row
    after them."""
    from openpyxl.styles import Font

    ws["A1"] = "LAPORAN PENGURANGAN SAMPAH BANK SAMPAH / WASTE BANK REDUCTION REPORT"
    ws["A1"].font = Font(bold=True, size=13)
    row = 2
    for label, value in notes(report):
        ws.cell(row=row, column=1, value=label).font = Font(bold=True)
        ws.cell(row=row, column=2, value=value)
        row += 1
    for label, number, fmt in key_figures(report):
        ws.cell(row=row, column=1, value=label).font = Font(bold=True)
        ws.cell(row=row, column=2, value=number).number_format = fmt
        row += 1
    return row


def key_figures(report: MonthlyReport) -> list[tuple[str, float | str | None, str]]:
    """(label, number, number format) of the month's figures a reader compares."""
    total = report.diversion_total
    share = report.total.share_pct
    return [
        ("Berat / Weight (kg)", report.total.net_g / 1000, KG_FORMAT),
        (
            "Timbulan (estimasi) / Generation (estimated) (kg)",
            None if report.generation_g is None else report.generation_g / 1000,
            KG_FORMAT,
        ),
        ("Pengurangan / Reduction (% timbulan / of generation)", _ratio(share), "0.0000%"),
        (
            "Ke TPA (estimasi) / TPA-bound (estimated) (kg)",
            None if total is None else total.tpa_bound_kg,
            KG_FORMAT,
        ),
        (
            "Tingkat pengalihan / Diversion rate",
            None if total is None else _rate(report, total),
            "0.00%",
        ),
    ]


def _ratio(pct: float | None) -> float | None:
    return None if pct is None else pct / 100


def _rate(report: MonthlyReport, d: DiversionRow) -> float | str | None:
    """A diversion rate as a number, or :data:`NOT_ENOUGH_DATA` below the coverage rule."""
    if report.coverage is not None and not report.coverage.enough:
        return NOT_ENOUGH_DATA
    return d.rate


def _table(ws: Worksheet, report: MonthlyReport, header_row: int) -> None:
    """The headings at ``header_row``, a row per kecamatan x category below, the total (bold)."""
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    for col, title in enumerate(CSV_HEADER[1:], start=1):
        ws.cell(row=header_row, column=col, value=title).font = Font(bold=True)
    r = header_row
    for item in [*report.rows, report.total]:
        r += 1
        for col, (value, fmt) in enumerate(zip(_values(item), TABLE_FORMATS, strict=True), 1):
            cell = ws.cell(row=r, column=col, value=value)
            if fmt:
                cell.number_format = fmt
            if item is report.total:
                cell.font = Font(bold=True)
    for col, width in enumerate(TABLE_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = f"A{header_row + 1}"


def _values(item: MonthlyRow) -> list[Any]:
    """A table row's cells: kg and shares as numbers (the formats show them)."""
    name = f"{item.category_name_id} / {item.category_name_en}" if item.category else None
    return [
        item.kecamatan,
        item.category or None,
        name,
        item.sipsn_class or None,
        sipsn_name(item.sipsn_class) or None,
        item.deposits,
        item.net_g / 1000,
        item.measured_g / 1000,
        item.estimated_g / 1000,
        _ratio(item.share_pct),
        *estimate_values(item.impact),
    ]


def _by_category(wb: Workbook, report: MonthlyReport) -> None:
    """Sheet ``Per kategori``: kg per category and a bar chart of it."""
    from openpyxl.chart import BarChart, Reference

    by_cat: dict[str, int] = defaultdict(int)
    for item in report.rows:
        by_cat[f"{item.category_name_id} / {item.category_name_en}"] += item.net_g
    cs = wb.create_sheet("Per kategori")
    cs.append(["Kategori / Category", "Berat kg / Weight kg"])
    for name, grams in sorted(by_cat.items()):
        cs.append([name, grams / 1000])
        cs.cell(row=cs.max_row, column=2).number_format = KG_FORMAT
    cs.column_dimensions["A"].width = 34
    cs.column_dimensions["B"].width = 16
    chart = BarChart()
    chart.type = "bar"
    chart.title = f"Tonase per kategori / Tonnage by category, {report.month}"
    chart.y_axis.title = "kg"
    chart.x_axis.title = "Kategori / Category"
    n = len(by_cat)
    chart.add_data(Reference(cs, min_col=2, min_row=1, max_row=n + 1), titles_from_data=True)
    chart.set_categories(Reference(cs, min_col=1, min_row=2, max_row=max(n + 1, 2)))
    chart.height, chart.width = 9, 18
    cs.add_chart(chart, "D2")


def _diversion(wb: Workbook, report: MonthlyReport) -> None:
    """Sheet ``Pengalihan``: diversion, waste banks against TPA-bound, by kecamatan."""
    from openpyxl.styles import Font

    ds = wb.create_sheet("Pengalihan")
    ds.append(list(DIVERSION_HEADER))
    for col in range(1, len(DIVERSION_HEADER) + 1):
        ds.cell(row=1, column=col).font = Font(bold=True)
    total_row = report.diversion_total
    rows: list[DiversionRow] = [*report.diversion, *([total_row] if total_row else [])]
    for d in rows:
        ds.append([d.kecamatan, d.diverted_g / 1000, d.tpa_bound_kg, d.pickups, _rate(report, d)])
        for col, fmt in DIVERSION_FORMATS:
            ds.cell(row=ds.max_row, column=col).number_format = fmt
        if d is total_row:
            for col in range(1, 6):
                ds.cell(row=ds.max_row, column=col).font = Font(bold=True)
    for letter, width in zip("ABCDE", DIVERSION_WIDTHS, strict=True):
        ds.column_dimensions[letter].width = width


def _estimates(wb: Workbook, report: MonthlyReport) -> None:
    """Sheet ``Estimasi``: per category (every kecamatan) and in all, each estimate's central,
    low and high figures; below, what each figure is and where it comes from, and what was not
    estimated and why."""
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    es = wb.create_sheet("Estimasi")
    es.append(["Kategori / Category", "Berat kg / Weight kg", *ESTIMATE_HEADER])
    for cell in es[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    rows = [*report.by_category(), ("Jumlah / Total", report.total.net_g, report.total.impact)]
    for name, grams, impact in rows:
        es.append([name, grams / 1000, *estimate_values(impact)])
        es.cell(row=es.max_row, column=2).number_format = KG_FORMAT
        for col in range(3, 3 + len(ESTIMATE_HEADER)):
            es.cell(row=es.max_row, column=col).number_format = ESTIMATE_FORMAT
    for cell in es[es.max_row]:
        cell.font = Font(bold=True)
    es.append([])
    es.append(["Apa angka ini / What each figure is"])
    es.cell(row=es.max_row, column=1).font = Font(bold=True)
    for field in IMPACT_FIELDS:
        f = FIGURES[field]
        es.append([estimate_heading(field), f"{f.basis.id} / {f.basis.en}"])
    es.append(["Rentang / Range", " / ".join(f"{i} = {e}" for _, i, e in RANGE_PARTS)])
    missing = report.total.impact.not_estimated if report.total.impact else {}
    for field, why in missing.items():
        es.append([f"Tidak diestimasi / Not estimated: {estimate_heading(field)}", reasons(why)])
    if report.total.impact is None:
        es.append(["CO2e & energi / CO2e & energy", "belum tersedia / not available"])
    es.column_dimensions["A"].width = 40
    es.column_dimensions["B"].width = 16
    for col in range(3, 3 + len(ESTIMATE_HEADER)):
        es.column_dimensions[get_column_letter(col)].width = 16
    es.row_dimensions[1].height = 60
