"""The monthly report as CSV: one line per kecamatan x category and the total, dot decimals, kg
exact (for a spreadsheet or a script)."""

from __future__ import annotations

import csv
import io

from wastebank.reports.monthly import MonthlyReport, MonthlyRow
from wastebank.reports.wording import CSV_HEADER, kg_plain, opt


def _csv_row(month: str, r: MonthlyRow) -> list[str]:
    name = f"{r.category_name_id} / {r.category_name_en}" if r.category else ""
    return [
        month,
        r.kecamatan,
        r.category,
        name,
        r.sipsn_class,
        str(r.deposits),
        kg_plain(r.net_g),
        kg_plain(r.measured_g),
        kg_plain(r.estimated_g),
        opt(r.share_pct, 4),
        opt(r.co2e_avoided_kg, 3),
        opt(r.energy_kwh, 3),
    ]


def monthly_csv(report: MonthlyReport) -> str:
    """One header line, one line per kecamatan x category, the total; dot decimals, kg exact.
    (The TPA-bound and diversion rate by kecamatan, whose rows are not by category, are in the
    XLSX's ``Pengalihan`` sheet, the PDF and ``/api/dlh/diversion``.)"""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_HEADER)
    for r in report.rows:
        w.writerow(_csv_row(report.month, r))
    w.writerow(_csv_row(report.month, report.total))
    return out.getvalue()
