"""Reading an import file safely: a CSV (UTF-8, comma or semicolon) or an XLSX sheet whose archive
is checked before openpyxl opens it (a zip bomb is refused from its central directory alone),
its header matched loosely to the fields wanted."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

from msgspec import Meta

from wastebank import formats
from wastebank.config import Settings
from wastebank.errors import BadInput

Cell = str | int | float | date | datetime | None


class ImportFileError(BadInput):
    """The file cannot be read as a table (format, sheet, encoding, no header)."""


class ArchiveTooLarge(ImportFileError):
    """An XLSX archive that would unpack to more than :class:`ImportLimits` allow."""

    status = 413
    title = "berkas terlalu besar jika dibuka / file too large unpacked"


class ImportLimits(Settings, kw_only=True):
    """What an XLSX file may unpack to (``[imports]``, ``WASTEBANK_IMPORTS__*``); the defaults
    leave room for a real list of 10,000 members (docs/scaling.md)."""

    max_members: Annotated[int, Meta(ge=10, description="files inside the archive")] = 1000
    max_uncompressed_bytes: Annotated[
        int, Meta(ge=1024 * 1024, description="all of them unpacked")
    ] = 32 * 1024 * 1024
    max_ratio: Annotated[
        int,
        Meta(ge=10, description="unpacked / packed size of any member larger than 1 MiB unpacked"),
    ] = 200


RATIO_FLOOR = 1024 * 1024  # smaller members are not judged by their ratio (tiny XML packs well)


def check_archive(path: Path, limits: ImportLimits) -> None:
    """Refuse (:class:`ArchiveTooLarge`) an XLSX archive beyond ``limits`` from its central
    directory alone; :class:`ImportFileError` when it is no zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ImportFileError(f"{path.name}: not a readable XLSX file ({exc})") from None
    if len(members) > limits.max_members:
        count, most = formats.number(len(members), 0), formats.number(limits.max_members, 0)
        raise ArchiveTooLarge(
            f"{path.name}: {count} berkas di dalamnya, paling banyak {most} / {count} files "
            f"inside, at most {most}"
        )
    total = sum(m.file_size for m in members)
    if total > limits.max_uncompressed_bytes:
        size, most = formats.number(total, 0), formats.number(limits.max_uncompressed_bytes, 0)
        raise ArchiveTooLarge(
            f"{path.name}: {size} bita jika dibuka, paling banyak {most} / unpacks to {size} "
            f"bytes, at most {most}"
        )
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
            times, most = formats.number(ratio, 0), formats.number(limits.max_ratio, 0)
            raise ArchiveTooLarge(
                f"{path.name}: {m.filename} dimampatkan {times} kali, paling banyak {most} "
                f"(bom zip?) / compressed {times} times, at most {most} (a zip bomb?)"
            )


# ---- reading tables ---------------------------------------------------------------------------


@dataclass
class Table:
    """The rows of a sheet, by canonical column name; ``ignored``: headers that match none."""

    rows: list[tuple[int, dict[str, Cell]]]
    ignored: list[str]


def _norm(header: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", header.strip().lower()).strip("_")


def _columns_of(
    headers: Sequence[Cell], aliases: Mapping[str, Sequence[str]]
) -> tuple[dict[int, str], list[str]]:
    """Which column holds which field (by position), and the headers that match none."""
    lookup = {_norm(alias): name for name, names in aliases.items() for alias in (name, *names)}
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    for i, header in enumerate(headers):
        if header is None or not str(header).strip():
            continue
        parts = [str(header), *str(header).split("/")]
        name = next((lookup[_norm(p)] for p in parts if _norm(p) in lookup), None)
        if name is None or name in mapping.values():
            ignored.append(str(header).strip())
        else:
            mapping[i] = name
    return mapping, ignored


def read_table(
    path: Path,
    aliases: Mapping[str, Sequence[str]],
    sheet: str | None = None,
    limits: ImportLimits | None = None,
) -> Table:
    """The rows of a CSV or XLSX file (its first sheet, or ``sheet``), blank rows skipped; an
    XLSX file only within ``limits`` (default :class:`ImportLimits`)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        check_archive(path, limits or ImportLimits())
        raw = _xlsx_rows(path, sheet)
    elif suffix in (".csv", ".txt"):
        if sheet is not None:
            raise ImportFileError("a CSV file has no sheets (--sheet)")
        raw = _csv_rows(path)
    else:
        raise ImportFileError(f"{path.name}: not a .csv or .xlsx file (an old .xls: save as .xlsx)")
    try:
        header = next(raw)
    except StopIteration:
        raise ImportFileError(f"{path.name} is empty: no header row") from None
    mapping, ignored = _columns_of(header, aliases)
    table = Table(rows=[], ignored=ignored)
    for number, values in enumerate(raw, start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        row = {name: values[i] if i < len(values) else None for i, name in mapping.items()}
        table.rows.append((number, row))
    return table


def _xlsx_cell(value: object) -> Cell:
    """openpyxl's value as a :data:`Cell`: times, durations, decimals and rich text as text."""
    if value is None or isinstance(value, str | int | float | date | datetime):
        return value
    return str(value)


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[Sequence[Cell]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a bad file
        raise ImportFileError(f"{path.name}: not a readable XLSX file ({exc})") from None
    if sheet is not None and sheet not in wb.sheetnames:
        raise ImportFileError(f"{path.name} has no sheet {sheet!r} (it has {wb.sheetnames})")
    ws = wb[sheet] if sheet is not None else wb.worksheets[0]
    rows = [[_xlsx_cell(v) for v in r] for r in ws.iter_rows(values_only=True)]
    wb.close()
    return iter(rows)


def _csv_rows(path: Path) -> Iterator[Sequence[Cell]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError(f"{path.name}: not UTF-8 (save it as 'CSV UTF-8')") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    return iter(list(csv.reader(io.StringIO(text), delimiter=delimiter)))
