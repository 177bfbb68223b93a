"""The statement as a printable A4 PDF and the receipt as an A6 one (:mod:`wastebank.pdfdoc`:
fpdf2's core fonts, so no font files or system packages)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from wastebank.formats import latin1, quantity_text, rupiah, tanggal, tanggal_waktu, unit_price
from wastebank.passbook.receipts import Receipt
from wastebank.passbook.statements import Statement, StatementLine
from wastebank.passbook.wording import line_what, period_text
from wastebank.pdfdoc import A6, document, table

if TYPE_CHECKING:
    from fpdf import FPDF

STATEMENT_HEADINGS = (
    "Tanggal / Date",
    "Keterangan / Description",
    "Berat / Weight",
    "Harga / Price",
    "Debit",
    "Kredit / Credit",
    "Saldo / Balance",
)


def statement_pdf(st: Statement) -> bytes:
    """A printable A4 statement: header, opening balance, the lines with running balance,
    closing balance, page numbers."""
    printed = tanggal_waktu(st.generated_at, ZoneInfo(st.timezone))
    pdf = document(
        f"Buku tabungan {st.member_no}", footer=f"{st.member_no} - dicetak / printed {printed}"
    )
    _statement_head(pdf, st)
    _statement_lines(pdf, st)
    _statement_totals(pdf, st)
    return bytes(pdf.output())


def _statement_head(pdf: FPDF, st: Statement) -> None:
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


def _statement_lines(pdf: FPDF, st: Statement) -> None:
    pdf.set_font("helvetica", size=8)
    widths = (23, 59, 20, 22, 20, 20, 22)
    align = ("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    with table(pdf, widths, align, width=186) as t:
        t.row([latin1(h) for h in STATEMENT_HEADINGS])
        for line in st.lines:
            t.row(_statement_row(line))
    if not st.lines:
        pdf.cell(0, 6, "(tidak ada transaksi / no entries)", new_x="LMARGIN", new_y="NEXT")


def _statement_row(line: StatementLine) -> list[str]:
    weight = (
        quantity_text(line.unit or "kg", line.net_g, line.quantity)
        if line.net_g is not None
        else ""
    )
    price = unit_price(line.price_idr, line.unit or "kg") if line.price_idr else ""
    return [
        f"{tanggal(line.at.date())} {line.at:%H.%M}",
        latin1(line_what(line)),
        weight,
        price,
        rupiah(line.debit_idr) if line.debit_idr else "",
        rupiah(line.credit_idr) if line.credit_idr else "",
        rupiah(line.balance_idr),
    ]


def _statement_totals(pdf: FPDF, st: Statement) -> None:
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


def receipt_pdf(rc: Receipt) -> bytes:
    """The receipt as an A6 PDF (105 x 148 mm)."""
    tz = ZoneInfo(rc.timezone)
    pdf = document(f"Kuitansi {rc.number}", page_format=A6, margin=8, bottom=8)
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
