"""The monthly report as a file: its bytes in a format, the media type and the file name."""

from __future__ import annotations

from wastebank.reports.csvfile import monthly_csv
from wastebank.reports.monthly import MonthlyReport
from wastebank.reports.pdf import monthly_pdf
from wastebank.reports.xlsx import monthly_xlsx

FORMATS = ("xlsx", "csv", "pdf")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


def render(report: MonthlyReport, fmt: str) -> bytes:
    """The report as ``fmt`` bytes (CSV: UTF-8 with the BOM Excel looks for)."""
    if fmt == "xlsx":
        return monthly_xlsx(report)
    if fmt == "pdf":
        return monthly_pdf(report)
    if fmt == "csv":
        return monthly_csv(report).encode("utf-8-sig")
    raise ValueError(f"unknown format {fmt!r}: one of {FORMATS}")


def filename(report: MonthlyReport, fmt: str) -> str:
    return f"laporan-dlh-{report.city_code}-{report.month}.{fmt}"
