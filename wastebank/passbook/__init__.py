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

The modules: :mod:`.statements` (the lines and a statement: the data), :mod:`.receipts`,
:mod:`.export` (a member's data), :mod:`.wording` (the words every rendering uses),
:mod:`.plain` (CSV and text) and :mod:`.pdf`. Their public names are this package's.
"""

# The formats live in wastebank.formats; callers that import them from here still may.
from wastebank.formats import (
    MONTHS_ID,
    UNIT_LABELS,
    csv_text,
    kg,
    quantity_text,
    rupiah,
    tanggal,
    tanggal_waktu,
    unit_price,
    zone_label,
)
from wastebank.passbook.export import (
    CardOut,
    DepositOut,
    MemberData,
    ProfileOut,
    WithdrawalOut,
    member_data,
)
from wastebank.passbook.pdf import receipt_pdf, statement_pdf
from wastebank.passbook.plain import (
    CSV_COLUMNS,
    RECEIPT_WIDTHS,
    receipt_text,
    statement_csv,
    statement_text,
)
from wastebank.passbook.receipts import Receipt, ReceiptLine, receipt
from wastebank.passbook.statements import (
    LINE_LABELS,
    METHOD_LABELS,
    LineKind,
    OpenWithdrawal,
    Statement,
    StatementLine,
    city_zone,
    member_lines,
    period_bounds,
    statement,
)
from wastebank.passbook.wording import line_what, period_text

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
    "line_what",
    "member_data",
    "member_lines",
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
