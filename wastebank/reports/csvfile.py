"""The reports as CSV, in one of two dialects:

* ``id`` (the default): what Excel in an Indonesian locale opens by a double click: ``;``
  between fields (the Windows list separator of id-ID, whose decimal sign is the comma), comma
  decimals, no thousands separators;
* ``plain``: ``,`` between fields and dot decimals (RFC 4180; an English-locale spreadsheet, a
  script).

Both are UTF-8 with a byte-order mark (without it Excel reads the file in the Windows code page
and garbles every non-ASCII name; ``utf-8-sig`` reads it back) and CRLF line ends. Masses are kg
exactly (three decimals: the ledger's grams); a text cell that a spreadsheet would run as a
formula is quoted (:func:`wastebank.formats.csv_text`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from wastebank.formats import csv_text
from wastebank.reports.monthly import MonthlyReport, MonthlyRow
from wastebank.reports.scope import sipsn_name
from wastebank.reports.wording import CSV_HEADER, estimate_values

CsvDialect = Literal["id", "plain"]
CSV_DIALECTS: tuple[str, ...] = ("id", "plain")


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    decimal: str


DIALECTS: dict[str, Dialect] = {"id": Dialect(";", ","), "plain": Dialect(",", ".")}


class Figure(str):
    """A number already written in its dialect: a cell as it is (a text cell is made safe)."""


def decimal(value: float | None, places: int, dialect: CsvDialect) -> Figure:
    """``1234,500`` (id) or ``1234.500`` (plain); empty for None."""
    if value is None:
        return Figure("")
    return Figure(f"{value:.{places}f}".replace(".", DIALECTS[dialect].decimal))


def kg_exact(grams: int, dialect: CsvDialect) -> Figure:
    """Grams as kg with three decimals, exactly (no float on the way)."""
    sign = "-" if grams < 0 else ""
    whole, rest = divmod(abs(grams), 1000)
    return Figure(f"{sign}{whole}{DIALECTS[dialect].decimal}{rest:03d}")


def write_csv(
    header: Sequence[str], rows: Iterable[Sequence[str | int]], dialect: CsvDialect
) -> str:
    """The header and the rows: a text cell made safe, an int or a :class:`Figure` as is."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown CSV dialect {dialect!r}: one of {CSV_DIALECTS}")
    out = io.StringIO()
    w = csv.writer(out, delimiter=DIALECTS[dialect].delimiter, lineterminator="\r\n")
    w.writerow(header)
    for row in rows:
        w.writerow([c if isinstance(c, int | Figure) else csv_text(c) for c in row])
    return out.getvalue()


def _csv_row(month: str, r: MonthlyRow, dialect: CsvDialect) -> list[str | int]:
    name = f"{r.category_name_id} / {r.category_name_en}" if r.category else ""
    return [
        month,
        r.kecamatan,
        r.category,
        name,
        r.sipsn_class,
        sipsn_name(r.sipsn_class),
        r.deposits,
        kg_exact(r.net_g, dialect),
        kg_exact(r.measured_g, dialect),
        kg_exact(r.estimated_g, dialect),
        decimal(r.share_pct, 4, dialect),
        *(decimal(v, 3, dialect) for v in estimate_values(r.impact)),
    ]


def monthly_csv(report: MonthlyReport, dialect: CsvDialect = "id") -> str:
    """One header line, one line per kecamatan x category, the total. (The TPA-bound and
    diversion rate by kecamatan, whose rows are not by category, are in the XLSX's
    ``Pengalihan`` sheet, the PDF and ``/api/dlh/diversion``.)"""
    rows = [_csv_row(report.month, r, dialect) for r in [*report.rows, report.total]]
    return write_csv(CSV_HEADER, rows, dialect)
