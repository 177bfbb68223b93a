"""What an import did: each row's status and reasons, as text to print, CSV or XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from wastebank.bulk_import.files import ImportFileError
from wastebank.formats import csv_text, xlsx_text_cells

Progress = Callable[[int, int], None]  # (rows done, rows in all)


class ImportKind(StrEnum):
    MEMBERS = "members"
    PRICES = "prices"


class Mode(StrEnum):
    ALL_OR_NOTHING = "all-or-nothing"
    VALID_ONLY = "valid-only"


class RowStatus(StrEnum):
    IMPORTED = "imported"
    REFUSED = "refused"
    WOULD_IMPORT = "would-import"  # a dry run's valid row
    NOT_IMPORTED = "not-imported"  # valid, but another row was refused (all-or-nothing)


STATUS_LABELS = {
    RowStatus.IMPORTED: "diimpor / imported",
    RowStatus.REFUSED: "ditolak / refused",
    RowStatus.WOULD_IMPORT: "akan diimpor / would be imported",
    RowStatus.NOT_IMPORTED: "tidak diimpor, ada baris ditolak / not imported, other rows refused",
}
KIND_LABELS = {
    ImportKind.MEMBERS: "Impor nasabah / Member import",
    ImportKind.PRICES: "Impor harga / Price import",
}
REPORT_COLUMNS = ("baris / row", "kunci / key", "status", "alasan / reasons")


@dataclass
class RowResult:
    row: int  # as the spreadsheet numbers it: the header is row 1
    key: str  # the member number, or bank/category@date
    status: RowStatus
    reasons: list[str] = field(default_factory=list)


@dataclass
class ImportReport:
    kind: ImportKind
    source: str
    mode: Mode
    dry_run: bool
    rows: list[RowResult]
    ignored_columns: list[str] = field(default_factory=list)

    def count(self, status: RowStatus) -> int:
        return sum(1 for r in self.rows if r.status is status)

    @property
    def refused(self) -> int:
        return self.count(RowStatus.REFUSED)

    @property
    def imported(self) -> int:
        return self.count(RowStatus.IMPORTED)

    @property
    def ok(self) -> bool:
        """No row refused."""
        return self.refused == 0

    def text(self) -> str:
        """The report to print: one line per row, reasons below a refused one, then totals."""
        mode = {
            Mode.ALL_OR_NOTHING: "semua atau tidak sama sekali / all-or-nothing",
            Mode.VALID_ONLY: "hanya baris sah / valid rows only",
        }[self.mode]
        out = [
            f"{KIND_LABELS[self.kind]}: {self.source}",
            f"Mode: {mode}" + ("; uji coba, tidak ada yang ditulis / dry run" * self.dry_run),
        ]
        if self.ignored_columns:
            out.append(
                "Kolom diabaikan / ignored columns: " + ", ".join(sorted(self.ignored_columns))
            )
        for r in self.rows:
            out.append(f"Baris / row {r.row} {r.key or '-'}: {STATUS_LABELS[r.status]}")
            out += [f"    - {reason}" for reason in r.reasons]
        totals = ", ".join(
            f"{STATUS_LABELS[s].split(',')[0]}: {self.count(s)}" for s in RowStatus if self.count(s)
        )
        out.append(f"Jumlah / total {len(self.rows)} baris / rows: {totals or '-'}")
        return "\n".join(out) + "\n"

    def table(self) -> list[list[str | int]]:
        """The report's rows: row, key, status, reasons."""
        return [[r.row, r.key, r.status.value, "; ".join(r.reasons)] for r in self.rows]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(REPORT_COLUMNS)
        for row, key, status, reasons in self.table():
            # Keys and reasons quote the file's cells: never let a spreadsheet run them.
            writer.writerow([row, csv_text(str(key)), status, csv_text(str(reasons))])
        return out.getvalue()

    def write(self, path: Path) -> None:
        """Write the report as ``.csv`` or ``.xlsx`` (by the file's suffix)."""
        suffix = path.suffix.lower()
        if suffix == ".csv":
            path.write_text(self.csv(), encoding="utf-8-sig")  # Excel reads UTF-8 with a BOM
        elif suffix == ".xlsx":
            from openpyxl import Workbook
            from openpyxl.styles import Font

            wb = Workbook()
            ws = wb.active
            assert ws is not None
            ws.title = "laporan"
            ws.append(list(REPORT_COLUMNS))
            for cell in ws[1]:
                cell.font = Font(bold=True)
            for row in self.table():
                ws.append(row)
            for column, width in zip("ABCD", (12, 24, 16, 100), strict=True):
                ws.column_dimensions[column].width = width
            ws.freeze_panes = "A2"
            xlsx_text_cells(wb).save(path)  # the file's text, never a formula
        else:
            raise ImportFileError(f"a report is .csv or .xlsx, not {path.name}")
