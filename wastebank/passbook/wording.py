"""The words a statement or a receipt is written with, in every rendering (text, PDF): a line's
description, a quantity in its category's unit, a unit price, a period."""

from __future__ import annotations

from wastebank import ledger
from wastebank.formats import kg, litres, rupiah, tanggal, thousands
from wastebank.passbook.statements import LineKind, Statement, StatementLine

UNIT_LABELS = {ledger.Unit.KG: "kg", ledger.Unit.PIECE: "pcs", ledger.Unit.LITRE: "L"}


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


def period_text(st: Statement) -> str:
    """``1 Nov 2026 - 30 Nov 2026 (WIT)``; open ends as ``awal / start`` and ``kini / now``."""
    start = tanggal(st.period_from) if st.period_from else "awal / start"
    end = tanggal(st.period_to) if st.period_to else "kini / now"
    return f"{start} - {end} ({st.timezone_label})"


def line_what(line: StatementLine) -> str:
    """The description column: kind, category, and the reference or note."""
    what = f"{line.label_id} / {line.label_en}"
    if line.category_name_id:
        what += f": {line.category_name_id}"
    if line.kind is LineKind.WITHDRAWAL:
        what += f" ({line.note})"
    elif line.kind is not LineKind.DEPOSIT or line.manual:
        what += f" - {line.note}" if line.note else ""
    return what
