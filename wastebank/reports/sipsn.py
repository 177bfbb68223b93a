"""The bank sampah figures a kabupaten/kota enters in SIPSN (Sistem Informasi Pengelolaan Sampah
Nasional, KLHK), for a period: per bank, its kind (BSI/BSU), the units under an induk, where it
is, its members; per bank and category, the waste it took in (kg, measured and estimated), the
deposits and their value. One row per bank and category (every category, so a zero is an
answer, not a gap), as CSV (the report's two dialects) or XLSX. The mapping to SIPSN's fields and
its sources: docs/reports.md, "Ekspor SIPSN".

Periods: a year (``2026``), a half year (``2026-S1``: January-June, ``2026-S2``; SIPSN is
updated twice a year) or a month (``2026-10``), in the city's local days. Kilograms are the
ledger's daily summary's (:func:`wastebank.reports.cells`, voided deposits left out), the same
sums as the monthly report; value and active members are read from the deposits of the period.
"""

from __future__ import annotations

import calendar
import io
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.formats import xlsx_text_cells
from wastebank.reports.banks import bank_facts, city_banks
from wastebank.reports.csvfile import CsvDialect, decimal, kg_exact, write_csv
from wastebank.reports.generation import ReportSettings
from wastebank.reports.monthly import FIRST_DAY, LAST_DAY
from wastebank.reports.output import MEDIA_TYPES, csv_bytes
from wastebank.reports.scope import SIPSN_NAMES, Scope
from wastebank.reports.summary import cells

SIPSN_FORMATS = ("xlsx", "csv")
KIND_SIPSN = {ledger.BankKind.INDUK: "BSI", ledger.BankKind.UNIT: "BSU"}
_PERIOD = re.compile(r"^(\d{4})(?:-(S[12]|\d{2}))?$")


def parse_period(text: str) -> tuple[date, date]:
    """``2026`` -> the year; ``2026-S1`` -> January-June, ``2026-S2`` -> July-December;
    ``2026-10`` -> the month. ValueError otherwise, or outside 2000..2100."""
    m = _PERIOD.match(text)
    if m is None:
        raise ValueError(f"bukan periode / not a period: {text!r} (2026, 2026-S1, 2026-10)")
    year, part = int(m.group(1)), m.group(2)
    if not FIRST_DAY.year <= year <= LAST_DAY.year:  # before date(): year 0 is no date at all
        raise ValueError(
            f"periode di luar / a period outside {FIRST_DAY.year}..{LAST_DAY.year}: {text!r}"
        )
    if part is None:
        first, last = date(year, 1, 1), date(year, 12, 31)
    elif part == "S1":
        first, last = date(year, 1, 1), date(year, 6, 30)
    elif part == "S2":
        first, last = date(year, 7, 1), date(year, 12, 31)
    else:
        month = int(part)
        if not 1 <= month <= 12:
            raise ValueError(f"bukan periode / not a period: {text!r} (month 01..12)")
        first = date(year, month, 1)
        last = date(year, month, calendar.monthrange(year, month)[1])
    return first, last


class SipsnRow(BaseModel):
    """One bank and one category over the period."""

    bank_code: str
    bank_name: str
    bank_type: str = Field(description="BSI (bank sampah induk) | BSU (bank sampah unit)")
    parent_code: str | None = Field(description="the BSI a BSU reports to")
    kelurahan: str
    kecamatan: str
    address: str | None
    lat: float | None
    lon: float | None
    units: int | None = Field(description="a BSI: the BSU under it; a BSU: None")
    members: int = Field(description="nasabah registered at the bank (now)")
    active_members: int = Field(description="nasabah with a deposit in the period")
    category_code: str
    category_name: str
    unit: str
    sipsn_class: str
    sipsn_class_name: str
    deposits: int
    net_g: int
    measured_g: int
    estimated_g: int
    value_idr: int = Field(description="what the bank paid for it (the deposits' amounts)")


class SipsnExport(BaseModel):
    city_code: str
    city_name: str
    timezone: str
    period: str
    start: date
    end: date
    generated_at: datetime
    rows: list[SipsnRow]
    problems: list[str] = Field(default_factory=list, description="city data file entries left out")


def sipsn_export(
    session: Session,
    scope: Scope,
    period: str,
    settings: ReportSettings | None = None,
    *,
    now: datetime | None = None,
) -> SipsnExport:
    """Every bank of the city x every category, with the period's totals of the ledger."""
    first, last = parse_period(period)
    banks = city_banks(session, scope)
    facts, problems = bank_facts(scope.city_code, {b.code for b in banks}, settings)
    grams: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])  # manual, scale, n
    for c in cells(session, scope, first, last, "total"):
        g = grams[c.bank_id, c.category_id]
        g[0 if c.manual else 1] += c.net_g
        g[2] += c.deposits
    start = datetime.combine(first, time(0), scope.tz)
    end = datetime.combine(last + timedelta(days=1), time(0), scope.tz)
    value, active = _from_deposits(session, [b.id for b in banks], start, end)
    members = dict(
        session.execute(
            select(ledger.Member.bank_id, func.count())
            .where(ledger.Member.bank_id.in_([b.id for b in banks]))
            .group_by(ledger.Member.bank_id)
        ).all()
    )
    units: dict[int, int] = defaultdict(int)
    for b in banks:
        if b.parent_id is not None:
            units[b.parent_id] += 1
    codes = {b.id: b.code for b in banks}
    categories = sorted(session.scalars(select(ledger.Category)), key=lambda c: c.code)
    rows = []
    for b in banks:
        f = facts.get(b.code)
        info = scope.banks[b.id]
        for cat in categories:
            manual_g, scale_g, n = grams.get((b.id, cat.id), [0, 0, 0])
            rows.append(
                SipsnRow(
                    bank_code=b.code,
                    bank_name=b.name,
                    bank_type=KIND_SIPSN.get(ledger.BankKind(b.kind), b.kind),
                    parent_code=codes.get(b.parent_id) if b.parent_id is not None else None,
                    kelurahan=info.kelurahan,
                    kecamatan=info.kecamatan,
                    address=f.address if f else None,
                    lat=f.lat if f else None,
                    lon=f.lon if f else None,
                    units=units[b.id] if b.kind == ledger.BankKind.INDUK else None,
                    members=int(members.get(b.id, 0)),
                    active_members=active.get(b.id, 0),
                    category_code=cat.code,
                    category_name=f"{cat.name_id} / {cat.name_en}",
                    unit=cat.unit,
                    sipsn_class=cat.sipsn_class,
                    sipsn_class_name=SIPSN_NAMES.get(cat.sipsn_class, (cat.sipsn_class, ""))[0],
                    deposits=n,
                    net_g=manual_g + scale_g,
                    measured_g=scale_g,
                    estimated_g=manual_g,
                    value_idr=value.get((b.id, cat.id), 0),
                )
            )
    return SipsnExport(
        city_code=scope.city_code,
        city_name=scope.city_name,
        timezone=scope.timezone,
        period=period,
        start=first,
        end=last,
        generated_at=now or datetime.now(UTC),
        rows=rows,
        problems=problems,
    )


def _from_deposits(
    session: Session, bank_ids: list[int], start: datetime, end: datetime
) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """The value paid per (bank, category) and the members with a deposit per bank, of the
    non-voided deposits measured in ``[start, end)``."""
    d = ledger.Deposit
    live = (
        d.bank_id.in_(bank_ids),
        d.measured_at >= start,
        d.measured_at < end,
        ~d.id.in_(select(ledger.DepositVoid.deposit_id)),
    )
    value = {
        (bank, cat): int(total or 0)
        for bank, cat, total in session.execute(
            select(d.bank_id, d.category_id, func.sum(d.amount_idr))
            .where(*live)
            .group_by(d.bank_id, d.category_id)
        )
    }
    active = {
        bank: int(n)
        for bank, n in session.execute(
            select(d.bank_id, func.count(func.distinct(d.member_id)))
            .where(*live)
            .group_by(d.bank_id)
        )
    }
    return value, active


# ---- renderings -------------------------------------------------------------------------------

Kind = Literal["text", "count", "grams", "coordinate", "rupiah"]


@dataclass(frozen=True)
class Column:
    heading: str
    value: Callable[[SipsnExport, SipsnRow], Any]
    kind: Kind = "text"


COLUMNS = (
    Column("periode / period", lambda e, r: e.period),
    Column("kab/kota / city", lambda e, r: e.city_name),
    Column("kode bank / bank code", lambda e, r: r.bank_code),
    Column("nama bank sampah / waste bank name", lambda e, r: r.bank_name),
    Column("jenis (BSI/BSU) / type", lambda e, r: r.bank_type),
    Column("BSI induk / parent BSI", lambda e, r: r.parent_code),
    Column("kelurahan/desa", lambda e, r: r.kelurahan),
    Column("kecamatan / sub-district", lambda e, r: r.kecamatan),
    Column("alamat / address", lambda e, r: r.address),
    Column("lintang / latitude", lambda e, r: r.lat, "coordinate"),
    Column("bujur / longitude", lambda e, r: r.lon, "coordinate"),
    Column("jumlah BSU / units", lambda e, r: r.units, "count"),
    Column("jumlah nasabah / members", lambda e, r: r.members, "count"),
    Column("nasabah aktif / active members", lambda e, r: r.active_members, "count"),
    Column("kode kategori / category code", lambda e, r: r.category_code),
    Column("kategori / category", lambda e, r: r.category_name),
    Column("satuan / unit", lambda e, r: r.unit),
    Column("komposisi SIPSN / SIPSN class", lambda e, r: r.sipsn_class_name),
    Column("setoran / deposits", lambda e, r: r.deposits, "count"),
    Column("sampah terkelola kg / waste managed kg", lambda e, r: r.net_g, "grams"),
    Column("terukur kg / measured kg", lambda e, r: r.measured_g, "grams"),
    Column("estimasi kg / estimated kg", lambda e, r: r.estimated_g, "grams"),
    Column("nilai Rp / value IDR", lambda e, r: r.value_idr, "rupiah"),
)
SIPSN_HEADER = tuple(c.heading for c in COLUMNS)
XLSX_FORMATS: dict[Kind, str] = {
    "count": "#,##0",
    "grams": "#,##0.000",  # shown as kg
    "coordinate": "0.000000",
    "rupiah": '"Rp"#,##0',
}


def _csv_cell(kind: Kind, value: Any, dialect: CsvDialect) -> str | int:
    if value is None:
        return ""
    if kind == "grams":
        return kg_exact(value, dialect)
    if kind == "coordinate":
        return decimal(value, 6, dialect)
    return value  # type: ignore[no-any-return]


def sipsn_csv(export: SipsnExport, dialect: CsvDialect = "id") -> str:
    rows = ([_csv_cell(c.kind, c.value(export, r), dialect) for c in COLUMNS] for r in export.rows)
    return write_csv(SIPSN_HEADER, rows, dialect)


def sipsn_xlsx(export: SipsnExport) -> bytes:
    """Sheet ``SIPSN``: the rows, numbers as numbers; sheet ``Catatan``: the period and the
    basis (and entries of the city data file left out)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "SIPSN"
    ws.append(list(SIPSN_HEADER))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in export.rows:
        values = [c.value(export, r) for c in COLUMNS]
        ws.append(
            [
                v / 1000 if c.kind == "grams" and v is not None else v
                for c, v in zip(COLUMNS, values, strict=True)
            ]
        )
        for col, c in enumerate(COLUMNS, start=1):
            if c.kind in XLSX_FORMATS:
                ws.cell(row=ws.max_row, column=col).number_format = XLSX_FORMATS[c.kind]
    ws.freeze_panes = "A2"
    notes = wb.create_sheet("Catatan")
    for row in _notes(export):
        notes.append(row)
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["B"].width = 90
    out = io.BytesIO()
    xlsx_text_cells(wb).save(out)
    return out.getvalue()


def _notes(e: SipsnExport) -> list[list[str]]:
    rows = [
        ["Kab/kota / City", f"{e.city_name} ({e.city_code})"],
        ["Periode / Period", f"{e.period}: {e.start.isoformat()} - {e.end.isoformat()}"],
        ["Zona / Time zone", e.timezone],
        [
            "Sumber / Source",
            "buku besar bank sampah, setoran batal tidak dihitung / the waste banks' ledger, "
            "voided deposits excluded",
        ],
        [
            "Terukur / Measured",
            "ditimbang / weighed on a scale; estimasi / estimated: entri manual / manual entries",
        ],
    ]
    rows += [["Dilewati / Left out", p] for p in e.problems]
    return rows


def sipsn_render(export: SipsnExport, fmt: str, *, csv_dialect: CsvDialect = "id") -> bytes:
    if fmt == "xlsx":
        return sipsn_xlsx(export)
    if fmt == "csv":
        return csv_bytes(sipsn_csv(export, csv_dialect))
    raise ValueError(f"unknown format {fmt!r}: one of {SIPSN_FORMATS}")


def sipsn_filename(export: SipsnExport, fmt: str) -> str:
    return f"sipsn-bank-sampah-{export.city_code}-{export.period}.{fmt}"


SIPSN_MEDIA_TYPES = {f: MEDIA_TYPES[f] for f in SIPSN_FORMATS}
