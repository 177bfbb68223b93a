"""Passbook (buku tabungan) statements, deposit receipts (kuitansi) and a member's data export.

A statement is built from the ledger's documents, the same ones :func:`wastebank.ledger.verify`
checks the journal against: deposits (credited at ``measured_at``), their voids (reversed at
``voided_at``; a correction is a void plus the deposit that replaced it) and paid withdrawals
(debited at ``paid_at``). Requested and approved withdrawals move no money yet: they are listed
apart, as reserved. Every line carries the running balance, so the opening balance plus the lines
is the closing balance by construction, and the closing balance of a statement that runs to now
is :func:`wastebank.ledger.member_balance`.

Periods are local dates in the member's city (WIB, WITA or WIT; Ambon is Asia/Jayapura, WIT),
both ends included. Money is integer Rupiah and weights integer grams throughout; only the
renderings format them, the Indonesian way: ``Rp12.500``, ``1,25 kg``, ``23 Nov 2026 09.30 WIT``,
with Bahasa Indonesia first and English second in headings.

Renderings: JSON (the pydantic models), CSV (integers, for a spreadsheet), PDF (A4 statement, A6
receipt; fpdf2's core fonts, so no font files or system packages) and plain text (a receipt for
a 32- or 48-column thermal printer).
"""

from __future__ import annotations

import csv
import io
import textwrap
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.formats import (
    MONTHS_ID,
    ascii_text,
    csv_text,
    kg,
    latin1,
    litres,
    rupiah,
    tanggal,
    tanggal_waktu,
    thousands,
    zone_label,
)

__all__ = [
    "CSV_COLUMNS",
    "CardOut",
    "DepositOut",
    "LINE_LABELS",
    "LineKind",
    "METHOD_LABELS",
    "MONTHS_ID",
    "MemberData",
    "OpenWithdrawal",
    "ProfileOut",
    "RECEIPT_WIDTHS",
    "Receipt",
    "ReceiptLine",
    "Statement",
    "StatementLine",
    "UNIT_LABELS",
    "WithdrawalOut",
    "city_zone",
    "csv_text",
    "kg",
    "member_data",
    "period_bounds",
    "period_text",
    "quantity_text",
    "receipt",
    "receipt_pdf",
    "receipt_text",
    "rupiah",
    "statement",
    "statement_csv",
    "statement_pdf",
    "statement_text",
    "tanggal",
    "tanggal_waktu",
    "unit_price",
    "zone_label",
]

UNIT_LABELS = {ledger.Unit.KG: "kg", ledger.Unit.PIECE: "pcs", ledger.Unit.LITRE: "L"}
RECEIPT_WIDTHS = (32, 48)  # 58 mm and 80 mm thermal paper, in Font A columns


# ---- formatting in a category's unit (the numbers and dates themselves: wastebank.formats) ----


def quantity_text(unit: str, net_g: int, quantity: int | None) -> str:
    """What was deposited, in its category's unit: ``1,25 kg``, ``12 pcs``, ``1,5 L``."""
    if unit == ledger.Unit.PIECE and quantity is not None:
        return f"{thousands(quantity)} pcs"
    if unit == ledger.Unit.LITRE and quantity is not None:
        return litres(quantity)
    return kg(net_g)


def unit_price(price_idr: int, unit: str) -> str:
    """``Rp4.000/kg``."""
    return f"{rupiah(price_idr)}/{UNIT_LABELS.get(ledger.Unit(unit), unit)}"


# ---- statements -------------------------------------------------------------------------------


class LineKind(StrEnum):
    DEPOSIT = "deposit"  # setoran
    VOID = "void"  # pembatalan: a deposit reversed
    CORRECTION = "correction"  # koreksi: a deposit reversed and replaced (see the replacement)
    WITHDRAWAL = "withdrawal"  # penarikan, paid


LINE_LABELS: dict[LineKind, tuple[str, str]] = {
    LineKind.DEPOSIT: ("Setoran", "Deposit"),
    LineKind.VOID: ("Pembatalan", "Reversal"),
    LineKind.CORRECTION: ("Koreksi", "Correction"),
    LineKind.WITHDRAWAL: ("Penarikan", "Withdrawal"),
}
METHOD_LABELS = {
    ledger.PayoutMethod.CASH: "tunai / cash",
    ledger.PayoutMethod.BANK_TRANSFER: "transfer bank / bank transfer",
    ledger.PayoutMethod.EWALLET: "dompet digital / e-wallet",
}
_ORDER = {LineKind.DEPOSIT: 0, LineKind.VOID: 1, LineKind.CORRECTION: 1, LineKind.WITHDRAWAL: 2}


class StatementLine(BaseModel):
    """One entry of the passbook. ``amount_idr`` is signed (credit > 0, debit < 0) and
    ``balance_idr`` is the balance after it."""

    at: AwareDatetime  # in the city's zone
    kind: LineKind
    label_id: str
    label_en: str
    reference: str  # the deposit's event id (also for its reversal), or withdrawal:<id>
    category_code: str | None = None
    category_name_id: str | None = None
    category_name_en: str | None = None
    unit: str | None = None  # kg, piece, litre
    net_g: int | None = None
    quantity: int | None = None  # pieces or millilitres for a piece or litre category
    price_idr: int | None = None  # per the category's unit
    amount_idr: int
    balance_idr: int
    manual: bool = False
    note: str = ""  # a manual deposit's or a void's reason; a withdrawal's payout method

    @property
    def credit_idr(self) -> int:
        return max(self.amount_idr, 0)

    @property
    def debit_idr(self) -> int:
        return max(-self.amount_idr, 0)


class OpenWithdrawal(BaseModel):
    """A requested or approved withdrawal: reserved from the balance, not paid yet."""

    id: int
    status: str
    amount_idr: int
    method: str
    requested_at: AwareDatetime


class Statement(BaseModel):
    member_no: str
    member_name: str
    bank_code: str
    bank_name: str
    city: str
    timezone: str  # IANA, e.g. Asia/Jayapura
    timezone_label: str  # WIB, WITA, WIT
    period_from: date | None  # local dates, both included; None: from the first entry
    period_to: date | None  # None: up to now
    opening_balance_idr: int
    closing_balance_idr: int
    credits_idr: int  # deposits in the period
    debits_idr: int  # reversals and withdrawals in the period
    deposited_g: int  # weight deposited in the period, less reversed deposits
    lines: list[StatementLine]
    open_withdrawals: list[OpenWithdrawal]  # as of generated_at
    available_idr: int  # balance now less open withdrawals, as of generated_at
    generated_at: AwareDatetime


def city_zone(member: ledger.Member) -> ZoneInfo:
    return ZoneInfo(member.bank.city.timezone)


def period_bounds(
    tz: ZoneInfo, date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` in UTC of the local dates ``date_from`` to ``date_to`` (both included)."""
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ValueError(f"the period ends ({date_to}) before it starts ({date_from})")
    start = datetime.combine(date_from, time(0), tz).astimezone(UTC) if date_from else None
    end = (
        datetime.combine(date_to + timedelta(days=1), time(0), tz).astimezone(UTC)
        if date_to
        else None
    )
    return start, end


def _all_lines(session: Session, member: ledger.Member, tz: ZoneInfo) -> list[StatementLine]:
    """Every money line of the member, in passbook order, with running balances."""
    unsorted: list[tuple[tuple[datetime, int, int], StatementLine]] = []
    rows = session.execute(
        select(ledger.Deposit, ledger.Category, ledger.DepositVoid)
        .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
        .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
        .where(ledger.Deposit.member_id == member.id)
    ).all()
    for d, cat, void in rows:
        details = {
            "reference": d.event_id,
            "category_code": cat.code,
            "category_name_id": cat.name_id,
            "category_name_en": cat.name_en,
            "unit": cat.unit,
            "net_g": d.net_g,
            "quantity": d.quantity,
            "price_idr": d.price_per_kg_idr,
        }
        deposit = StatementLine(
            at=d.measured_at.astimezone(tz),
            kind=LineKind.DEPOSIT,
            label_id=LINE_LABELS[LineKind.DEPOSIT][0],
            label_en=LINE_LABELS[LineKind.DEPOSIT][1],
            amount_idr=d.amount_idr,
            balance_idr=0,
            manual=d.manual,
            note=d.reason or "",
            **details,
        )
        unsorted.append(((d.measured_at, _ORDER[deposit.kind], d.id), deposit))
        if void is None:
            continue
        kind = LineKind.VOID if void.replacement_id is None else LineKind.CORRECTION
        # A gateway clock ahead of the server's could date a deposit after its own void.
        at = max(void.voided_at, d.measured_at)
        reversal = StatementLine(
            at=at.astimezone(tz),
            kind=kind,
            label_id=LINE_LABELS[kind][0],
            label_en=LINE_LABELS[kind][1],
            amount_idr=-d.amount_idr,
            balance_idr=0,
            note=void.reason,
            **details,
        )
        unsorted.append(((at, _ORDER[kind], void.id), reversal))
    for w in session.scalars(
        select(ledger.Withdrawal).where(
            ledger.Withdrawal.member_id == member.id,
            ledger.Withdrawal.status == ledger.WithdrawalStatus.PAID,
        )
    ):
        paid_at = w.paid_at or w.requested_at
        line = StatementLine(
            at=paid_at.astimezone(tz),
            kind=LineKind.WITHDRAWAL,
            label_id=LINE_LABELS[LineKind.WITHDRAWAL][0],
            label_en=LINE_LABELS[LineKind.WITHDRAWAL][1],
            reference=f"withdrawal:{w.id}",
            amount_idr=-w.amount_idr,
            balance_idr=0,
            note=METHOD_LABELS.get(ledger.PayoutMethod(w.method), w.method),
        )
        unsorted.append(((paid_at, _ORDER[LineKind.WITHDRAWAL], w.id), line))
    unsorted.sort(key=lambda pair: pair[0])
    balance = 0
    out = []
    for _, line in unsorted:
        balance += line.amount_idr
        out.append(line.model_copy(update={"balance_idr": balance}))
    return out


def statement(
    session: Session,
    member_no: str,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    now: datetime | None = None,
) -> Statement:
    """The member's passbook for the local dates ``date_from`` to ``date_to`` (both included;
    None: open-ended). Raises :class:`wastebank.ledger.NotFound` for an unknown member."""
    member = ledger.get_member(session, member_no)
    if member is None:
        raise ledger.NotFound(f"unknown member {member_no!r}")
    tz = city_zone(member)
    start, end = period_bounds(tz, date_from, date_to)
    now = now or ledger.utcnow()
    lines = _all_lines(session, member, tz)
    before = [line for line in lines if start is not None and line.at < start]
    inside = [
        line
        for line in lines[len(before) :]
        if (start is None or line.at >= start) and (end is None or line.at < end)
    ]
    opening = before[-1].balance_idr if before else 0
    closing = inside[-1].balance_idr if inside else opening
    open_rows = session.scalars(
        select(ledger.Withdrawal)
        .where(
            ledger.Withdrawal.member_id == member.id,
            ledger.Withdrawal.status.in_(ledger.OPEN_WITHDRAWALS),
        )
        .order_by(ledger.Withdrawal.requested_at, ledger.Withdrawal.id)
    ).all()
    balance_now = lines[-1].balance_idr if lines else 0
    deposited = sum(
        (line.net_g or 0) * (1 if line.kind is LineKind.DEPOSIT else -1)
        for line in inside
        if line.kind is not LineKind.WITHDRAWAL
    )
    return Statement(
        member_no=member.member_no,
        member_name=member.name,
        bank_code=member.bank.code,
        bank_name=member.bank.name,
        city=member.bank.city.name,
        timezone=tz.key,
        timezone_label=zone_label(tz, now),
        period_from=date_from,
        period_to=date_to,
        opening_balance_idr=opening,
        closing_balance_idr=closing,
        credits_idr=sum(line.credit_idr for line in inside),
        debits_idr=sum(line.debit_idr for line in inside),
        deposited_g=deposited,
        lines=inside,
        open_withdrawals=[
            OpenWithdrawal(
                id=w.id,
                status=w.status,
                amount_idr=w.amount_idr,
                method=w.method,
                requested_at=w.requested_at.astimezone(tz),
            )
            for w in open_rows
        ],
        available_idr=balance_now - sum(w.amount_idr for w in open_rows),
        generated_at=now.astimezone(tz),
    )


def period_text(st: Statement) -> str:
    """``1 Nov 2026 - 30 Nov 2026 (WIT)``; open ends as ``awal / start`` and ``kini / now``."""
    start = tanggal(st.period_from) if st.period_from else "awal / start"
    end = tanggal(st.period_to) if st.period_to else "kini / now"
    return f"{start} - {end} ({st.timezone_label})"


def _line_what(line: StatementLine) -> str:
    """The description column: kind, category, and the reference or note."""
    what = f"{line.label_id} / {line.label_en}"
    if line.category_name_id:
        what += f": {line.category_name_id}"
    if line.kind is LineKind.WITHDRAWAL:
        what += f" ({line.note})"
    elif line.kind is not LineKind.DEPOSIT or line.manual:
        what += f" - {line.note}" if line.note else ""
    return what


# ---- CSV --------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "tanggal / date",
    "jenis / type",
    "referensi / reference",
    "kategori / category",
    "berat_g / weight_g",
    "jumlah / quantity",
    "satuan / unit",
    "harga_rp / price_idr",
    "debit_rp / debit_idr",
    "kredit_rp / credit_idr",
    "saldo_rp / balance_idr",
    "keterangan / note",
)


def statement_csv(st: Statement) -> str:
    """The statement as CSV: integer Rupiah and grams (no locale to misread), local times
    ``YYYY-MM-DD HH:MM:SS``, an opening row first and a closing row last. Free text (notes) is
    guarded against spreadsheet formulas (:func:`csv_text`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    start = st.period_from.isoformat() if st.period_from else ""
    writer.writerow(_csv_summary(start, "saldo_awal / opening", st.opening_balance_idr))
    for line in st.lines:
        writer.writerow(
            [
                f"{line.at:%Y-%m-%d %H:%M:%S}",
                line.kind.value,
                csv_text(line.reference),
                line.category_code or "",
                "" if line.net_g is None else line.net_g,
                "" if line.quantity is None else line.quantity,
                line.unit or "",
                "" if line.price_idr is None else line.price_idr,
                line.debit_idr or "",
                line.credit_idr or "",
                line.balance_idr,
                csv_text(line.note),
            ]
        )
    end = st.period_to.isoformat() if st.period_to else f"{st.generated_at:%Y-%m-%d}"
    writer.writerow(_csv_summary(end, "saldo_akhir / closing", st.closing_balance_idr))
    return out.getvalue()


def _csv_summary(day: str, kind: str, balance: int) -> list[object]:
    return [day, kind, "", "", "", "", "", "", "", "", balance, ""]


# ---- plain text -------------------------------------------------------------------------------


def statement_text(st: Statement) -> str:
    """The statement as plain text, 100 columns."""
    out = [
        "BUKU TABUNGAN / PASSBOOK STATEMENT",
        f"Nasabah / Member: {st.member_no} {st.member_name}",
        f"Bank sampah / Waste bank: {st.bank_name} ({st.bank_code}), {st.city}",
        f"Periode / Period: {period_text(st)}",
        f"Saldo awal / Opening balance: {rupiah(st.opening_balance_idr)}",
        "",
        f"{'Tanggal / Date':<22}{'Keterangan / Description':<34}{'Berat / Weight':>14}"
        f"{'Jumlah / Amount':>16}{'Saldo / Balance':>16}",
    ]
    for line in st.lines:
        weight = (
            quantity_text(line.unit or "kg", line.net_g, line.quantity)
            if line.net_g is not None
            else ""
        )
        what = textwrap.wrap(_line_what(line), 32) or [""]
        local = line.at
        when = f"{tanggal(local.date())} {local:%H.%M}"
        out.append(
            f"{when:<22}{what[0]:<34}{weight:>14}{rupiah(line.amount_idr):>16}"
            f"{rupiah(line.balance_idr):>16}"
        )
        out += [f"{'':<22}{more}" for more in what[1:]]
    if not st.lines:
        out.append("(tidak ada transaksi / no entries)")
    out += [
        "",
        f"Saldo akhir / Closing balance: {rupiah(st.closing_balance_idr)}",
        f"Dicetak / Printed: {tanggal_waktu(st.generated_at, ZoneInfo(st.timezone))}",
    ]
    return "\n".join(out) + "\n"


# ---- PDF --------------------------------------------------------------------------------------


def statement_pdf(st: Statement) -> bytes:
    """A printable A4 statement: header, opening balance, the lines with running balance,
    closing balance, page numbers."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    tz = ZoneInfo(st.timezone)
    printed = tanggal_waktu(st.generated_at, tz)

    class _Doc(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font("helvetica", size=7)
            self.cell(
                0,
                5,
                latin1(
                    f"{st.member_no} - dicetak / printed {printed} - "
                    f"halaman / page {self.page_no()}/{{nb}}"
                ),
                align="C",
            )

    pdf = _Doc(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(12, 12, 12)
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_creator("wastebank")
    pdf.set_title(latin1(f"Buku tabungan {st.member_no}"))
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(0, 8, "BUKU TABUNGAN / PASSBOOK STATEMENT", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    for label, value in (
        ("Bank sampah / Waste bank", f"{st.bank_name} ({st.bank_code}), {st.city}"),
        ("Nasabah / Member", f"{st.member_no} - {st.member_name}"),
        ("Periode / Period", period_text(st)),
        ("Saldo awal / Opening balance", rupiah(st.opening_balance_idr)),
    ):
        pdf.cell(55, 5, latin1(label))
        pdf.cell(0, 5, latin1(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", size=8)
    headings = (
        "Tanggal / Date",
        "Keterangan / Description",
        "Berat / Weight",
        "Harga / Price",
        "Debit",
        "Kredit / Credit",
        "Saldo / Balance",
    )
    with pdf.table(
        col_widths=(23, 59, 20, 22, 20, 20, 22),
        text_align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT"),
        borders_layout="HORIZONTAL_LINES",
        headings_style=FontFace(emphasis="BOLD"),
        line_height=4.2,
        width=186,
    ) as table:
        table.row([latin1(h) for h in headings])
        for line in st.lines:
            weight = (
                quantity_text(line.unit or "kg", line.net_g, line.quantity)
                if line.net_g is not None
                else ""
            )
            price = unit_price(line.price_idr, line.unit or "kg") if line.price_idr else ""
            when = f"{tanggal(line.at.date())} {line.at:%H.%M}"
            table.row(
                [
                    when,
                    latin1(_line_what(line)),
                    weight,
                    price,
                    rupiah(line.debit_idr) if line.debit_idr else "",
                    rupiah(line.credit_idr) if line.credit_idr else "",
                    rupiah(line.balance_idr),
                ]
            )
    if not st.lines:
        pdf.cell(0, 6, "(tidak ada transaksi / no entries)", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 9)
    for label, value in (
        ("Jumlah setoran / Total credits", rupiah(st.credits_idr)),
        ("Jumlah debit / Total debits", rupiah(st.debits_idr)),
        ("Saldo akhir / Closing balance", rupiah(st.closing_balance_idr)),
    ):
        pdf.cell(55, 5, label)
        pdf.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
    if st.open_withdrawals:
        pdf.set_font("helvetica", size=8)
        reserved = sum(w.amount_idr for w in st.open_withdrawals)
        pdf.cell(
            0,
            5,
            f"Penarikan dalam proses / Withdrawals in progress: {rupiah(reserved)}; "
            f"saldo tersedia / available: {rupiah(st.available_idr)}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    return bytes(pdf.output())


# ---- receipts (kuitansi) ----------------------------------------------------------------------


class ReceiptLine(BaseModel):
    event_id: str
    category_code: str
    category_name_id: str
    category_name_en: str
    unit: str
    net_g: int
    quantity: int | None
    price_idr: int
    amount_idr: int
    manual: bool
    voided: bool  # reversed since; the receipt says so when reprinted


class Receipt(BaseModel):
    """The kuitansi of one visit: one or more deposits of one member at one bank."""

    number: str  # the first deposit's event id
    bank_code: str
    bank_name: str
    bank_place: str  # kelurahan, kecamatan, city
    member_no: str
    member_name: str
    at: AwareDatetime  # the first deposit's time, in the city's zone
    timezone: str
    lines: list[ReceiptLine]
    total_idr: int  # of the lines not voided
    balance_after_idr: int  # the passbook balance right after the last of these deposits
    attendant: str | None  # who entered a manual deposit
    printed_at: AwareDatetime


def receipt(session: Session, event_ids: Sequence[str], *, now: datetime | None = None) -> Receipt:
    """The receipt of deposits ``event_ids`` (one member's, at one bank: a visit). Raises
    :class:`wastebank.ledger.NotFound` for an unknown deposit and ValueError for deposits of
    different members or none."""
    if not event_ids:
        raise ValueError("a receipt needs at least one deposit")
    wanted = list(dict.fromkeys(event_ids))
    rows = {
        d.event_id: (d, c, v)
        for d, c, v in session.execute(
            select(ledger.Deposit, ledger.Category, ledger.DepositVoid)
            .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
            .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
            .where(ledger.Deposit.event_id.in_(wanted))
        ).all()
    }
    if missing := [e for e in wanted if e not in rows]:
        raise ledger.NotFound(f"unknown deposit(s): {', '.join(missing)}")
    deposits = [rows[e] for e in wanted]
    first = deposits[0][0]
    if any(d.member_id != first.member_id for d, _, _ in deposits):
        raise ValueError("a receipt covers the deposits of one member")
    member = first.member
    tz = city_zone(member)
    lines = [
        ReceiptLine(
            event_id=d.event_id,
            category_code=c.code,
            category_name_id=c.name_id,
            category_name_en=c.name_en,
            unit=c.unit,
            net_g=d.net_g,
            quantity=d.quantity,
            price_idr=d.price_per_kg_idr,
            amount_idr=d.amount_idr,
            manual=d.manual,
            voided=v is not None,
        )
        for d, c, v in deposits
    ]
    passbook = _all_lines(session, member, tz)
    positions = [
        i
        for i, line in enumerate(passbook)
        if line.kind is LineKind.DEPOSIT and line.reference in rows
    ]
    bank = member.bank
    kelurahan = bank.kelurahan
    authors = sorted({d.author for d, _, _ in deposits if d.author})
    return Receipt(
        number=first.event_id,
        bank_code=bank.code,
        bank_name=bank.name,
        bank_place=f"{kelurahan.name}, {kelurahan.kecamatan.name}, {bank.city.name}",
        member_no=member.member_no,
        member_name=member.name,
        at=min(d.measured_at for d, _, _ in deposits).astimezone(tz),
        timezone=tz.key,
        lines=lines,
        total_idr=sum(line.amount_idr for line in lines if not line.voided),
        balance_after_idr=passbook[max(positions)].balance_idr,
        attendant=", ".join(authors) or None,
        printed_at=(now or ledger.utcnow()).astimezone(tz),
    )


def _pair(left: str, right: str, width: int) -> list[str]:
    """``left`` and ``right`` on one line of ``width``, right-aligned; wrapped when too long."""
    if len(left) + 1 + len(right) <= width:
        return [left + " " * (width - len(left) - len(right)) + right]
    return [*textwrap.wrap(left, width), right.rjust(width)]


def receipt_text(rc: Receipt, width: int = 32) -> str:
    """The receipt as plain ASCII text of ``width`` columns (32: 58 mm paper, 48: 80 mm), for
    an ESC/POS thermal printer's text mode."""
    if width not in RECEIPT_WIDTHS:
        raise ValueError(f"a receipt is {' or '.join(map(str, RECEIPT_WIDTHS))} columns wide")
    tz = ZoneInfo(rc.timezone)
    rule = "-" * width
    out = [
        *(s.center(width).rstrip() for s in textwrap.wrap(ascii_text(rc.bank_name), width)),
        *(s.center(width).rstrip() for s in textwrap.wrap(ascii_text(rc.bank_place), width)),
        rule,
        "KUITANSI SETORAN".center(width).rstrip(),
        "DEPOSIT RECEIPT".center(width).rstrip(),
        rule,
        *textwrap.wrap(f"No: {rc.number}", width),
        *textwrap.wrap(f"Tanggal/Date: {ascii_text(tanggal_waktu(rc.at, tz))}", width),
        *textwrap.wrap(f"Nasabah/Member: {rc.member_no}", width),
        *textwrap.wrap(ascii_text(rc.member_name), width),
        rule,
    ]
    for line in rc.lines:
        out += textwrap.wrap(ascii_text(line.category_name_id), width)
        count = quantity_text(line.unit, line.net_g, line.quantity)
        out += _pair(
            f"  {count} x {unit_price(line.price_idr, line.unit)}", rupiah(line.amount_idr), width
        )
        if line.manual:
            out.append("  (manual)")
        if line.voided:
            out.append("  ** DIBATALKAN / VOIDED **"[:width])
    out += [
        rule,
        *_pair("TOTAL", rupiah(rc.total_idr), width),
        *_pair("Saldo/Balance", rupiah(rc.balance_after_idr), width),
        rule,
    ]
    if rc.attendant:
        out += textwrap.wrap(f"Petugas/Attendant: {ascii_text(rc.attendant)}", width)
    out += [
        *textwrap.wrap(f"Dicetak/Printed: {ascii_text(tanggal_waktu(rc.printed_at, tz))}", width),
        "Terima kasih / Thank you".center(width).rstrip(),
    ]
    return "\n".join(out) + "\n"


def receipt_pdf(rc: Receipt) -> bytes:
    """The receipt as an A6 PDF (105 x 148 mm)."""
    from fpdf import FPDF

    tz = ZoneInfo(rc.timezone)
    pdf = FPDF(orientation="portrait", unit="mm", format=(105, 148))  # A6
    pdf.set_margins(8, 8, 8)
    pdf.set_auto_page_break(auto=True, margin=8)
    pdf.set_creator("wastebank")
    pdf.set_title(latin1(f"Kuitansi {rc.number}"))
    pdf.add_page()
    w = pdf.epw

    def text(value: str, size: float = 8, style: str = "", align: str = "L") -> None:
        pdf.set_font("helvetica", style, size)
        pdf.multi_cell(w, size * 0.5, latin1(value), align=align, new_x="LMARGIN", new_y="NEXT")

    def pair(left: str, right: str, style: str = "") -> None:
        pdf.set_font("helvetica", style, 8)
        pdf.cell(w * 0.62, 4.2, latin1(left))
        pdf.cell(w * 0.38, 4.2, latin1(right), align="R", new_x="LMARGIN", new_y="NEXT")

    def rule() -> None:
        pdf.ln(1)
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + w, pdf.get_y())
        pdf.ln(1)

    text(rc.bank_name, 10, "B", "C")
    text(rc.bank_place, 7, align="C")
    rule()
    text("KUITANSI SETORAN / DEPOSIT RECEIPT", 9, "B", "C")
    rule()
    pair("No", rc.number)
    pair("Tanggal / Date", tanggal_waktu(rc.at, tz))
    pair("Nasabah / Member", rc.member_no)
    text(rc.member_name)
    rule()
    for line in rc.lines:
        text(f"{line.category_name_id} / {line.category_name_en}", 8, "B")
        count = quantity_text(line.unit, line.net_g, line.quantity)
        pair(f"  {count} x {unit_price(line.price_idr, line.unit)}", rupiah(line.amount_idr))
        if line.manual:
            text("  (dicatat manual / entered by hand)", 7)
        if line.voided:
            text("  DIBATALKAN / VOIDED", 8, "B")
    rule()
    pair("Jumlah / Total", rupiah(rc.total_idr), "B")
    pair("Saldo / Balance", rupiah(rc.balance_after_idr))
    rule()
    if rc.attendant:
        text(f"Petugas / Attendant: {rc.attendant}", 7)
    text(f"Dicetak / Printed: {tanggal_waktu(rc.printed_at, tz)}", 7)
    text("Terima kasih / Thank you", 8, align="C")
    return bytes(pdf.output())


# ---- a member's data (UU 27/2022 on personal data protection: the right of access) -----------


class CardOut(BaseModel):
    uid: str


class ProfileOut(BaseModel):
    member_no: str
    name: str
    kind: str
    phone: str | None
    bank_code: str
    bank_name: str
    kelurahan: str | None
    kecamatan: str | None
    rt: str | None
    rw: str | None
    # The NIK is never stored: only a keyed hash to find a second registration. Whether one was
    # recorded is part of the data held; the hash itself is no use to the member and stays in.
    nik_recorded: bool


class DepositOut(BaseModel):
    event_id: str
    bank_code: str
    category_code: str
    net_g: int
    tare_g: int
    quantity: int | None
    price_idr: int
    amount_idr: int
    measured_at: AwareDatetime
    recorded_at: AwareDatetime
    gateway_id: str
    scale_id: str
    flow: str
    manual: bool
    reason: str | None
    author: str | None
    voided_at: AwareDatetime | None
    void_reason: str | None
    replaced_by: str | None  # a correction's new deposit


class WithdrawalOut(BaseModel):
    id: int
    amount_idr: int
    method: str
    destination: str | None
    status: str
    requested_at: AwareDatetime
    requested_by: str
    decided_at: AwareDatetime | None
    reason: str | None
    paid_at: AwareDatetime | None
    payout_ref: str | None


class MemberData(BaseModel):
    """Everything the ledger holds about one member."""

    profile: ProfileOut
    cards: list[CardOut]
    deposits: list[DepositOut]
    withdrawals: list[WithdrawalOut]
    statement: Statement
    exported_at: AwareDatetime


def member_data(session: Session, member_no: str, *, now: datetime | None = None) -> MemberData:
    """What the ledger holds about ``member_no`` (UU 27/2022, the right of access): profile,
    cards, every deposit (with its void) and withdrawal, and the whole passbook. Raises
    :class:`wastebank.ledger.NotFound` for an unknown member."""
    member = ledger.get_member(session, member_no)
    if member is None:
        raise ledger.NotFound(f"unknown member {member_no!r}")
    now = now or ledger.utcnow()
    tz = city_zone(member)
    kelurahan = member.kelurahan
    replacement = ledger.Deposit.__table__.alias("replacement")
    deposits = session.execute(
        select(ledger.Deposit, ledger.Category.code, ledger.DepositVoid, replacement.c.event_id)
        .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
        .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
        .outerjoin(replacement, replacement.c.id == ledger.DepositVoid.replacement_id)
        .where(ledger.Deposit.member_id == member.id)
        .order_by(ledger.Deposit.measured_at, ledger.Deposit.id)
    ).all()
    withdrawals = session.scalars(
        select(ledger.Withdrawal)
        .where(ledger.Withdrawal.member_id == member.id)
        .order_by(ledger.Withdrawal.requested_at, ledger.Withdrawal.id)
    ).all()
    cards = session.scalars(
        select(ledger.Card.uid).where(ledger.Card.member_id == member.id).order_by(ledger.Card.uid)
    ).all()

    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(tz) if at is not None else None

    return MemberData(
        profile=ProfileOut(
            member_no=member.member_no,
            name=member.name,
            kind=member.kind,
            phone=member.phone,
            bank_code=member.bank.code,
            bank_name=member.bank.name,
            kelurahan=kelurahan.name if kelurahan else None,
            kecamatan=kelurahan.kecamatan.name if kelurahan else None,
            rt=member.rt,
            rw=member.rw,
            nik_recorded=member.nik_hash is not None,
        ),
        cards=[CardOut(uid=uid) for uid in cards],
        deposits=[
            DepositOut(
                event_id=d.event_id,
                bank_code=d.bank.code,
                category_code=code,
                net_g=d.net_g,
                tare_g=d.tare_g,
                quantity=d.quantity,
                price_idr=d.price_per_kg_idr,
                amount_idr=d.amount_idr,
                measured_at=d.measured_at.astimezone(tz),
                recorded_at=d.recorded_at.astimezone(tz),
                gateway_id=d.gateway_id,
                scale_id=d.scale_id,
                flow=d.flow,
                manual=d.manual,
                reason=d.reason,
                author=d.author,
                voided_at=local(void.voided_at) if void else None,
                void_reason=void.reason if void else None,
                replaced_by=replaced_by,
            )
            for d, code, void, replaced_by in deposits
        ],
        withdrawals=[
            WithdrawalOut(
                id=w.id,
                amount_idr=w.amount_idr,
                method=w.method,
                destination=w.destination,
                status=w.status,
                requested_at=w.requested_at.astimezone(tz),
                requested_by=w.requested_by,
                decided_at=local(w.decided_at),
                reason=w.reason,
                paid_at=local(w.paid_at),
                payout_ref=w.payout_ref,
            )
            for w in withdrawals
        ],
        statement=statement(session, member_no, now=now),
        exported_at=now.astimezone(tz),
    )
