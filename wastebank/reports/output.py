"""The monthly report as a file: its bytes in a format, the media type and the file name."""

from __future__ import annotations

from wastebank.reports.csvfile import CSV_DIALECTS, CsvDialect, monthly_csv
from wastebank.reports.monthly import MonthlyReport
from wastebank.reports.pdf import ORIENTATIONS, Orientation, monthly_pdf
from wastebank.reports.xlsx import monthly_xlsx

FORMATS = ("xlsx", "csv", "pdf")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}

__all__ = ["CSV_DIALECTS", "FORMATS", "MEDIA_TYPES", "ORIENTATIONS", "filename", "render"]


def csv_bytes(text: str) -> bytes:
    """UTF-8 with the byte-order mark Excel looks for (both dialects)."""
    return text.encode("utf-8-sig")


def render(
    report: MonthlyReport,
    fmt: str,
    *,
    csv_dialect: CsvDialect = "id",
    orientation: Orientation = "landscape",
) -> bytes:
    """The report as ``fmt`` bytes: the CSV in ``csv_dialect``, the PDF on A4 ``orientation``."""
    if fmt == "xlsx":
        return monthly_xlsx(report)
    if fmt == "pdf":
        return monthly_pdf(report, orientation)
    if fmt == "csv":
        return csv_bytes(monthly_csv(report, csv_dialect))
    raise ValueError(f"unknown format {fmt!r}: one of {FORMATS}")


def filename(report: MonthlyReport, fmt: str) -> str:
    return f"laporan-dlh-{report.city_code}-{report.month}.{fmt}"
