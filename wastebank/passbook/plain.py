"""The statement as CSV (integers, for a spreadsheet) and as plain text; the receipt as plain
ASCII text for a 32- or 48-column thermal printer."""

from __future__ import annotations

import csv
import io
import textwrap
from zoneinfo import ZoneInfo

from wastebank.formats import (
    ascii_text,
    csv_text,
    quantity_text,
    rupiah,
    tanggal,
    tanggal_waktu,
    unit_price,
)
from wastebank.passbook.receipts import Receipt
from wastebank.passbook.statements import Statement
from wastebank.passbook.wording import line_what, period_text

RECEIPT_WIDTHS = (32, 48)  # 58 mm and 80 mm thermal paper, in Font A columns


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
        what = textwrap.wrap(line_what(line), 32) or [""]
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


# ---- receipts ---------------------------------------------------------------------------------


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
