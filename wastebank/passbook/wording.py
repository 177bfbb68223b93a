"""The words a statement or a receipt is written with, in every rendering (text, PDF): a line's
description and the period (a quantity in its category's unit and a unit price:
:mod:`wastebank.formats`)."""

from __future__ import annotations

from wastebank.formats import tanggal
from wastebank.passbook.statements import LineKind, Statement, StatementLine


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
