"""Bulk import of members and prices from the CSV and XLSX lists attendants keep in Excel.

Every row ends up either imported or refused, with its row number as the spreadsheet shows it
(the header is row 1) and every reason found, so a petugas can fix the file and import again:

- members: a missing field, an unknown bank or kelurahan, a bad phone number, a member number
  or card that exists already (or twice in the file), a malformed NIK (16 digits, the structure
  Dukcapil gives it) or one already registered. A NIK is stored only as the ledger's keyed hash
  (:func:`wastebank.ledger.hash_nik`), so it needs the NIK key; it is never written anywhere else,
  the report included.
- prices: a missing field, an unknown bank or category, a price that is not whole Rupiah, a bad
  date, a bank that buys at its induk's prices, an author who is not its attendant, and whatever
  :func:`wastebank.ledger.set_price` refuses (a price that would reprice deposits already made).

Modes: **all-or-nothing** (the default) writes nothing when any row is refused; **valid-only**
writes the rows that pass; **dry run** writes nothing in either mode and says what would happen.
The whole import runs in one database transaction, each row in a savepoint of its own, and every
row goes through the ledger's own functions (``create_member``, ``set_price``): a dry run or a
refused all-or-nothing import is that transaction rolled back, so it reports exactly what a real
import would have done, down to ``set_price``'s refusals. On SQLite the transaction holds the
ledger's write lock for the import's duration (an ingester waits for it, up to its busy timeout).

An XLSX file is a zip archive, and a small one can unpack to gigabytes (a "zip bomb": 44 KB
that openpyxl spent 15 s and 745 MB on). Before openpyxl opens it, :func:`check_archive` reads
the archive's central directory only (nothing is unpacked) and refuses it with
:class:`ArchiveTooLarge` when it has too many members, unpacks to more than
``max_uncompressed_bytes`` in all, or has a member compressed more than ``max_ratio`` times
(:class:`ImportLimits`; the API's ``WASTEBANK_IMPORTS__*``). Python's zipfile never unpacks more
than a member's declared size (a member that lies fails its CRC), so the declared sizes bound
what openpyxl can be made to read.

CSV files may be UTF-8 (with or without the BOM Excel writes) and comma or semicolon separated
(an Indonesian Excel writes ``;``). Headers are matched loosely: ``no_nasabah``, ``Nomor
Nasabah`` and ``member_no`` are one column, and a bilingual header ``nama / name`` matches too.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wastebank import formats, ledger
from wastebank.formats import csv_text
from wastebank.money_rules import DEFAULT_RULES, MoneyRules

Progress = Callable[[int, int], None]  # (rows done, rows in all)
Cell = str | int | float | date | datetime | None


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


class ImportFileError(Exception):
    """The file cannot be read as a table (format, sheet, encoding, no header)."""


class ArchiveTooLarge(ImportFileError):
    """An XLSX archive that would unpack to more than :class:`ImportLimits` allow."""


class ImportLimits(BaseModel):
    """What an XLSX file may unpack to (``[imports]``, ``WASTEBANK_IMPORTS__*``). A real member
    list of 10,000 rows is ~1 MB packed, ~10 MB unpacked, its parts compressed 5-20 times."""

    max_members: int = Field(default=1000, ge=10, description="files inside the archive")
    max_uncompressed_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024 * 1024, description="all of them unpacked"
    )
    max_ratio: int = Field(
        default=200,
        ge=10,
        description="unpacked / packed size of any member larger than 1 MiB unpacked",
    )


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
                for cell in ws[ws.max_row]:
                    if cell.data_type == "f":  # the file's text, never a formula
                        cell.data_type = "s"
            for column, width in zip("ABCD", (12, 24, 16, 100), strict=True):
                ws.column_dimensions[column].width = width
            ws.freeze_panes = "A2"
            wb.save(path)
        else:
            raise ImportFileError(f"a report is .csv or .xlsx, not {path.name}")


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


# ---- cell values ------------------------------------------------------------------------------


def _text(value: Cell) -> str | None:
    """A cell as stripped text; None when empty. Whole numbers lose Excel's ``.0``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _key(text: str) -> str:
    """For matching names: case and spacing ignored."""
    return " ".join(text.split()).casefold()


def normalize_phone(value: Cell) -> str:
    """An Indonesian number in national form (``0812...``): spaces, dashes, dots and brackets
    dropped, ``+62``/``62`` made ``0``, and a leading ``8`` given back the ``0`` Excel drops
    from a number cell. Mobile (08...) 10-13 digits, landline (0 + area code) 9-12 digits."""
    raw = _text(value) or ""
    digits = re.sub(r"[\s\-.()/]", "", raw)
    if digits.startswith("+62"):
        digits = "0" + digits[3:]
    elif digits.startswith("62"):
        digits = "0" + digits[2:]
    elif digits.startswith("8"):
        digits = "0" + digits
    ok = (
        digits.isascii()
        and digits.isdigit()
        and digits.startswith("0")
        and digits[1:2] != "0"
        and (10 <= len(digits) <= 13 if digits.startswith("08") else 9 <= len(digits) <= 12)
    )
    if not ok:
        raise ValueError(f"nomor telepon tidak sah / bad phone number {raw!r}")
    return digits


def nik_problem(value: Cell) -> str | None:
    """What is wrong with a NIK cell, or None. 16 digits: province (11-96), regency and
    district codes, birth date (day + 40 for women), month, year, sequence (not 0000). A number
    cell is refused: Excel keeps 15 significant digits, so the 16th is lost."""
    if isinstance(value, int | float):
        return (
            "NIK tersimpan sebagai angka (Excel membulatkan digit ke-16); format kolom sebagai "
            "Teks / NIK stored as a number: Excel loses its 16th digit; format the column as Text"
        )
    digits = "".join(ch for ch in (_text(value) or "") if ch not in " .-")
    if len(digits) != 16 or not digits.isascii() or not digits.isdigit():
        return "NIK harus 16 digit / a NIK is 16 digits"
    day, month = int(digits[6:8]), int(digits[8:10])
    if not 11 <= int(digits[:2]) <= 96 or not (1 <= day <= 31 or 41 <= day <= 71):
        return "NIK tidak sah (kode wilayah/tanggal lahir) / NIK: bad region code or birth date"
    if not 1 <= month <= 12 or digits[12:] == "0000":
        return "NIK tidak sah (bulan lahir/nomor urut) / NIK: bad birth month or sequence"
    return None


def _rt_rw(value: Cell, what: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    digits = re.sub(rf"^{what}\.?\s*", "", text, flags=re.IGNORECASE)
    if not digits.isdigit() or not 0 < int(digits) < 1000:
        raise ValueError(f"{what} harus angka 1-999 / {what} is a number from 1 to 999: {text!r}")
    return f"{int(digits):03d}"


MEMBER_KINDS = {
    "individual": ledger.MemberKind.INDIVIDUAL,
    "perorangan": ledger.MemberKind.INDIVIDUAL,
    "pribadi": ledger.MemberKind.INDIVIDUAL,
    "individu": ledger.MemberKind.INDIVIDUAL,
    "group": ledger.MemberKind.GROUP,
    "kelompok": ledger.MemberKind.GROUP,
    "institution": ledger.MemberKind.INSTITUTION,
    "lembaga": ledger.MemberKind.INSTITUTION,
    "instansi": ledger.MemberKind.INSTITUTION,
    "badan": ledger.MemberKind.INSTITUTION,
}
MEMBER_NO = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]{0,31}")
CARD_UID = re.compile(r"(?:[0-9A-F]{2}){4,10}")  # 4, 7 or 10 bytes (ISO 14443), as hex


def parse_price(value: Cell) -> int:
    """Whole Rupiah: ``4000``, ``4.000``, ``Rp 4.000``, or a number cell without decimals."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and value >= 0:
            return int(value)
        raise ValueError(f"harga harus Rupiah bulat / a price is whole Rupiah: {value!r}")
    text = re.sub(r"^rp\.?\s*", "", (_text(value) or "").lower()).replace(" ", "")
    if re.fullmatch(r"\d+|\d{1,3}(\.\d{3})+", text):
        return int(text.replace(".", ""))
    raise ValueError(f"harga harus Rupiah bulat / a price is whole Rupiah: {value!r}")


def parse_when(value: Cell, tz: ZoneInfo) -> datetime:
    """An effective date: an Excel date cell, ``2026-12-01``, ``01/12/2026`` or ``1-12-2026``
    (day first, as Indonesia writes it), or an ISO date and time. A date means 00:00 and a time
    without an offset is local, in the bank's city."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz)
    text = _text(value) or ""
    if m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})", text):
        try:
            day = date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            raise ValueError(f"tanggal tidak sah / not a date: {text!r}") from None
        return datetime.combine(day, time(0), tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"tanggal tidak sah / not a date: {text!r} (2026-12-01 or 01/12/2026)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _missing(name: str, label: str) -> str:
    return f"kolom wajib kosong / missing field: {label} ({name})"


# ---- the transaction every import runs in ----------------------------------------------------


@contextmanager
def _import_session(engine: Engine) -> Iterator[Session]:
    """A session inside one outer transaction that the caller commits or rolls back
    (``.info["outer"]``). The session's own commits and rollbacks (those of ``set_price``)
    release or roll back a savepoint only."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        session.info["outer"] = outer
        try:
            yield session
        finally:
            session.close()
            if outer.is_active:
                outer.rollback()


def _finish(session: Session, results: list[RowResult], mode: Mode, dry_run: bool) -> None:
    """Commit or roll back the outer transaction; set the valid rows' status to match."""
    refused = any(r.status is RowStatus.REFUSED for r in results)
    keep = not dry_run and not (refused and mode is Mode.ALL_OR_NOTHING)
    outer = session.info["outer"]
    session.commit()  # releases the session's savepoint
    if keep:
        outer.commit()
        valid = RowStatus.IMPORTED
    else:
        outer.rollback()
        valid = RowStatus.WOULD_IMPORT if dry_run else RowStatus.NOT_IMPORTED
    for r in results:
        if r.status is not RowStatus.REFUSED:
            r.status = valid


# ---- members ---------------------------------------------------------------------------------

MEMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "member_no": ("no_nasabah", "nomor_nasabah", "nomor_anggota", "no_anggota", "member_number"),
    "name": ("nama", "nama_nasabah", "nama_lengkap"),
    "bank": ("kode_bank", "bank_code", "bank_sampah"),
    "kind": ("jenis", "jenis_nasabah", "tipe"),
    "phone": ("telepon", "no_hp", "nomor_hp", "hp", "no_telepon", "telp", "whatsapp", "wa"),
    "kelurahan": ("desa", "kelurahan_desa", "desa_kelurahan"),
    "kecamatan": (),
    "rt": (),
    "rw": (),
    "nik": ("no_nik", "nomor_induk_kependudukan"),
    "cards": ("card", "kartu", "uid_kartu", "card_uid", "no_kartu"),
}
MEMBER_LABELS = {"member_no": "no_nasabah", "name": "nama", "bank": "kode_bank"}


@dataclass
class _MemberRow:
    member_no: str
    name: str
    bank: ledger.Bank
    kind: str
    phone: str | None
    kelurahan: ledger.Kelurahan | None
    rt: str | None
    rw: str | None
    nik: str | None
    cards: list[str]


_CHUNK = 500  # values per IN (...) query


def _split_cards(text: str | None) -> list[str]:
    return [c.upper() for c in re.split(r"[\s,;]+", text or "") if c]


class _MemberChecks:
    """The reference data member rows are checked against, read once."""

    def __init__(self, session: Session, nik_key: bytes | None) -> None:
        self.s = session
        self.nik_key = nik_key
        self.banks = {b.code: b for b in session.scalars(select(ledger.Bank))}
        self.areas: dict[int, list[ledger.Kelurahan]] = {}  # city id -> its kelurahan
        self.seen_members: dict[str, int] = {}  # in this file: member_no -> row
        self.seen_cards: dict[str, int] = {}
        self.seen_niks: dict[str, int] = {}
        self.taken_members: set[str] = set()  # of the file's member numbers, those in the ledger
        self.taken_cards: set[str] = set()

    def prefetch(self, rows: list[tuple[int, dict[str, Cell]]]) -> None:
        """Which of the file's member numbers and cards the ledger has, in a few queries."""
        numbers = sorted({no for _, cells in rows if (no := _text(cells.get("member_no")))})
        uids = sorted({uid for _, cells in rows for uid in _split_cards(_text(cells.get("cards")))})
        for start in range(0, len(numbers), _CHUNK):
            self.taken_members.update(
                self.s.scalars(
                    select(ledger.Member.member_no).where(
                        ledger.Member.member_no.in_(numbers[start : start + _CHUNK])
                    )
                )
            )
        for start in range(0, len(uids), _CHUNK):
            self.taken_cards.update(
                self.s.scalars(
                    select(ledger.Card.uid).where(ledger.Card.uid.in_(uids[start : start + _CHUNK]))
                )
            )

    def kelurahan_of(self, bank: ledger.Bank, name: str, kecamatan: str | None) -> ledger.Kelurahan:
        if bank.city_id not in self.areas:
            self.areas[bank.city_id] = list(
                self.s.scalars(
                    select(ledger.Kelurahan)
                    .join(ledger.Kecamatan)
                    .where(ledger.Kecamatan.city_id == bank.city_id)
                )
            )
        found = [
            k
            for k in self.areas[bank.city_id]
            if _key(k.name) == _key(name)
            and (kecamatan is None or _key(k.kecamatan.name) == _key(kecamatan))
        ]
        where = f"{name} (kec. {kecamatan})" if kecamatan else name
        if not found:
            raise ValueError(
                f"kelurahan/desa tidak dikenal / unknown kelurahan {where!r} in {bank.city.name}"
            )
        if len(found) > 1:
            raise ValueError(
                f"kelurahan {name!r} ada di beberapa kecamatan, isi kolom kecamatan / is in "
                f"several kecamatan: give the kecamatan column"
            )
        return found[0]

    def check(self, number: int, cells: dict[str, Cell]) -> tuple[_MemberRow | None, list[str]]:
        reasons: list[str] = []
        member_no, name, bank_code = (_text(cells.get(k)) for k in ("member_no", "name", "bank"))
        for key, value in (("member_no", member_no), ("name", name), ("bank", bank_code)):
            if value is None:
                reasons.append(_missing(key, MEMBER_LABELS[key]))
        if member_no is not None:
            if not MEMBER_NO.fullmatch(member_no):
                reasons.append(
                    f"nomor nasabah tidak sah / bad member number {member_no!r}: up to 32 "
                    "letters, digits and . _ / - (e.g. AMB-0001)"
                )
            elif (earlier := self.seen_members.get(member_no)) is not None:
                reasons.append(
                    f"nomor nasabah ganda (baris {earlier}) / duplicate member number "
                    f"{member_no} (row {earlier})"
                )
            elif member_no in self.taken_members:
                reasons.append(
                    f"nomor nasabah sudah terdaftar / member number {member_no} already exists"
                )
            self.seen_members.setdefault(member_no, number)
        if name is not None and len(name) > 200:
            reasons.append("nama terlalu panjang / name over 200 characters")
        bank = self.banks.get(bank_code) if bank_code else None
        if bank_code is not None and bank is None:
            reasons.append(f"bank tidak dikenal / unknown bank {bank_code!r}")
        kind_text = _text(cells.get("kind"))
        kind = MEMBER_KINDS.get(_key(kind_text)) if kind_text else ledger.MemberKind.INDIVIDUAL
        if kind is None:
            reasons.append(
                f"jenis tidak dikenal / unknown kind {kind_text!r}: perorangan/individual, "
                "kelompok/group or lembaga/institution"
            )
        phone = None
        if cells.get("phone") is not None and _text(cells.get("phone")):
            try:
                phone = normalize_phone(cells["phone"])
            except ValueError as exc:
                reasons.append(str(exc))
        kelurahan = None
        kelurahan_name = _text(cells.get("kelurahan"))
        if kelurahan_name is not None and bank is not None:
            try:
                kelurahan = self.kelurahan_of(bank, kelurahan_name, _text(cells.get("kecamatan")))
            except ValueError as exc:
                reasons.append(str(exc))
        rt = rw = None
        try:
            rt = _rt_rw(cells.get("rt"), "RT")
        except ValueError as exc:
            reasons.append(str(exc))
        try:
            rw = _rt_rw(cells.get("rw"), "RW")
        except ValueError as exc:
            reasons.append(str(exc))
        nik = None
        if _text(cells.get("nik")) is not None:
            reasons += self._nik(number, cells["nik"])
            nik = _text(cells["nik"])
        cards = self._cards(number, _text(cells.get("cards")), reasons)
        if reasons or bank is None or kind is None:
            return None, reasons
        assert member_no is not None
        assert name is not None
        return (
            _MemberRow(member_no, name, bank, kind, phone, kelurahan, rt, rw, nik, cards),
            reasons,
        )

    def _nik(self, number: int, value: Cell) -> list[str]:
        if (problem := nik_problem(value)) is not None:
            return [problem]
        if self.nik_key is None:
            return [
                "NIK tidak dapat dicatat tanpa kunci NIK (WASTEBANK_NIK_KEY) / a NIK cannot be "
                "recorded without the NIK key"
            ]
        digest = ledger.hash_nik(str(value), self.nik_key)
        if (earlier := self.seen_niks.setdefault(digest, number)) != number:
            return [f"NIK ganda (baris {earlier}) / duplicate NIK (row {earlier})"]
        holders = ledger.members_with_nik(self.s, str(value), self.nik_key)
        if holders:
            nos = ", ".join(m.member_no for m in holders)
            return [f"NIK sudah terdaftar / NIK already registered: {nos}"]
        return []

    def _cards(self, number: int, text: str | None, reasons: list[str]) -> list[str]:
        cards = _split_cards(text)
        for uid in cards:
            if not CARD_UID.fullmatch(uid):
                reasons.append(
                    f"UID kartu tidak sah / bad card UID {uid!r} (8, 14 or 20 hex digits)"
                )
            elif (earlier := self.seen_cards.setdefault(uid, number)) != number:
                reasons.append(
                    f"kartu ganda (baris {earlier}) / duplicate card {uid} (row {earlier})"
                )
            elif uid in self.taken_cards:
                reasons.append(f"kartu sudah dipakai / card {uid} already belongs to a member")
        return cards


def import_members(
    engine: Engine,
    path: Path,
    *,
    mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
    nik_key: bytes | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
) -> ImportReport:
    """Register the members listed in ``path`` (see the module's doc). Raises
    :class:`ImportFileError` when the file cannot be read at all (:class:`ArchiveTooLarge`
    when it would unpack beyond ``limits``)."""
    table = read_table(path, MEMBER_COLUMNS, sheet, limits)
    results: list[RowResult] = []
    total = len(table.rows)
    with _import_session(engine) as session:
        checks = _MemberChecks(session, nik_key)
        checks.prefetch(table.rows)
        for done, (number, cells) in enumerate(table.rows, start=1):
            row, reasons = checks.check(number, cells)
            result = RowResult(number, _text(cells.get("member_no")) or "", RowStatus.REFUSED)
            result.reasons = reasons
            if row is not None:
                try:
                    with session.begin_nested():
                        ledger.create_member(
                            session,
                            bank=row.bank,
                            member_no=row.member_no,
                            name=row.name,
                            kind=row.kind,
                            phone=row.phone,
                            kelurahan=row.kelurahan,
                            rt=row.rt,
                            rw=row.rw,
                            nik=row.nik,
                            nik_key=nik_key,
                            cards=row.cards,
                        )
                    result.status = RowStatus.IMPORTED
                except (IntegrityError, ValueError, ledger.LedgerError) as exc:
                    result.reasons.append(f"ditolak basis data / refused by the ledger: {exc}")
            results.append(result)
            if progress is not None:
                progress(done, total)
        _finish(session, results, mode, dry_run)
    return ImportReport(ImportKind.MEMBERS, path.name, mode, dry_run, results, table.ignored)


# ---- prices ----------------------------------------------------------------------------------

PRICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "bank": ("kode_bank", "bank_code", "bank_sampah"),
    "category": ("kategori", "kode_kategori", "jenis_sampah", "category_code"),
    "price": ("harga", "harga_rp", "price_idr", "harga_per_kg", "harga_beli"),
    "effective_from": (
        "berlaku_mulai",
        "mulai_berlaku",
        "tanggal_berlaku",
        "berlaku_sejak",
        "effective_date",
        "tanggal",
    ),
}


def import_prices(
    engine: Engine,
    path: Path,
    *,
    author: str,
    mode: Mode = Mode.ALL_OR_NOTHING,
    dry_run: bool = False,
    sheet: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    limits: ImportLimits | None = None,
    rules: MoneyRules = DEFAULT_RULES,
) -> ImportReport:
    """Set the prices listed in ``path`` through :func:`wastebank.ledger.set_price`, as
    ``author`` (an attendant of each bank or of its induk), each held to the price limits of
    ``rules`` (a row beyond them is refused with the setting named). A row without an effective
    date takes effect at ``now`` (the moment of the import). See the module's doc."""
    table = read_table(path, PRICE_COLUMNS, sheet, limits)
    results: list[RowResult] = []
    total = len(table.rows)
    now = now or ledger.utcnow()
    with _import_session(engine) as session:
        banks = {b.code: b for b in session.scalars(select(ledger.Bank))}
        categories = {c.code: c for c in session.scalars(select(ledger.Category))}
        seen: dict[tuple[str, str, datetime], int] = {}
        for done, (number, cells) in enumerate(table.rows, start=1):
            reasons: list[str] = []
            bank_code, category_code = _text(cells.get("bank")), _text(cells.get("category"))
            bank = banks.get(bank_code) if bank_code else None
            category = categories.get(category_code) if category_code else None
            if bank_code is None:
                reasons.append(_missing("bank", "kode_bank"))
            elif bank is None:
                reasons.append(f"bank tidak dikenal / unknown bank {bank_code!r}")
            elif bank.use_parent_price:
                parent = bank.parent.code if bank.parent else "?"
                reasons.append(
                    f"{bank.code} memakai harga induk {parent} / buys at its induk's prices: "
                    f"set them for {parent}"
                )
            if category_code is None:
                reasons.append(_missing("category", "kategori"))
            elif category is None:
                reasons.append(f"kategori tidak dikenal / unknown category {category_code!r}")
            price = None
            if _text(cells.get("price")) is None:
                reasons.append(_missing("price", "harga"))
            else:
                try:
                    price = parse_price(cells["price"])
                except ValueError as exc:
                    reasons.append(str(exc))
            when = now
            if _text(cells.get("effective_from")) is not None:
                tz = ZoneInfo(bank.city.timezone) if bank else ZoneInfo("UTC")
                try:
                    when = parse_when(cells["effective_from"], tz)
                except ValueError as exc:
                    reasons.append(str(exc))
            if bank is not None and not bank.use_parent_price:
                try:
                    ledger.require_attendant(session, bank, author)
                except ledger.NotAllowed:
                    reasons.append(
                        f"{author!r} bukan petugas {bank.code} / is not an attendant of {bank.code}"
                    )
            key = f"{bank_code or '?'}/{category_code or '?'}@{when.isoformat()}"
            if bank_code and category_code:
                earlier = seen.setdefault((bank_code, category_code, when), number)
                if earlier != number:
                    reasons.append(f"baris ganda (baris {earlier}) / duplicate of row {earlier}")
            result = RowResult(number, key, RowStatus.REFUSED, reasons)
            if not reasons and bank is not None and category is not None and price is not None:
                try:
                    ledger.set_price(
                        session, bank.code, category.code, price, when, author=author, rules=rules
                    )
                    result.status = RowStatus.IMPORTED
                except (ValueError, ledger.LedgerError) as exc:
                    result.reasons.append(f"ditolak buku besar / refused by the ledger: {exc}")
            results.append(result)
            if progress is not None:
                progress(done, total)
        _finish(session, results, mode, dry_run)
    return ImportReport(ImportKind.PRICES, path.name, mode, dry_run, results, table.ignored)
