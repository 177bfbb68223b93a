"""The PDF documents the passbook and the reports print, set up once: fpdf2 with its core fonts
(Helvetica covers Latin-1, so no font file ships: text goes through
:func:`wastebank.formats.latin1`), the same margins, creator and title, a footer with the page
number on every page, and tables with horizontal rules and bold headings; :func:`fitted_table`
sizes a table's columns from the page's width, so it stays inside the margins whatever the
orientation.

fpdf2 is imported when a document is made, not with this module: a process that never prints
(an ingester, a CLI command) does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from wastebank.errors import BadInput
from wastebank.formats import latin1

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.fonts import FontFace
    from fpdf.table import Table

__all__ = ["A6", "NotWideEnough", "bold", "document", "fit_widths", "fitted_table", "table"]

A6 = (105, 148)  # mm, portrait: a receipt
CELL_PAD_X = 1.2  # mm of space left and right of a table cell's text
SMALLEST_FONT = 6.0  # pt: a fitted table's font is not made smaller than this


class NotWideEnough(BadInput, ValueError):
    """The columns' widest words do not fit side by side in the width given (bad input to
    :func:`fit_widths`; :func:`fitted_table` catches it and shrinks the font)."""


def document(
    title: str,
    *,
    footer: str | None = None,
    orientation: Literal["portrait", "landscape"] = "portrait",
    page_format: str | tuple[float, float] = "A4",
    margin: float = 12,
    bottom: float = 16,
) -> FPDF:
    """A document with its first page added: ``margin`` mm on three sides, a page break
    ``bottom`` mm above the edge, and, with ``footer``, the line ``<footer> - halaman / page
    n/N`` centred at the foot of every page."""
    from fpdf import FPDF

    class _Doc(FPDF):
        def footer(self) -> None:
            if footer is None:
                return
            self.set_y(-12)
            self.set_font("helvetica", size=7)
            text = f"{footer} - halaman / page {self.page_no()}/{{nb}}"
            self.cell(0, 5, latin1(text), align="C")

    pdf = _Doc(orientation=orientation, unit="mm", format=page_format)
    pdf.set_margins(margin, margin, margin)
    pdf.set_auto_page_break(auto=True, margin=bottom)
    pdf.set_creator("wastebank")
    pdf.set_title(latin1(title))
    pdf.add_page()
    return pdf


def bold() -> FontFace:
    """The style of a heading or a total row."""
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD")


@contextmanager
def table(
    pdf: FPDF, widths: Sequence[float], text_align: Sequence[str], **options: Any
) -> Iterator[Table]:
    """``pdf.table`` with these column ``widths`` (mm) and ``text_align`` (LEFT, RIGHT),
    horizontal rules, bold headings and 4.2 mm lines; ``options`` go to fpdf2 (``width``, the
    table's own ``align``)."""
    with pdf.table(
        col_widths=tuple(widths),
        text_align=tuple(text_align),
        borders_layout="HORIZONTAL_LINES",
        headings_style=bold(),
        line_height=4.2,
        **options,
    ) as t:
        yield t


def fit_widths(
    pdf: FPDF,
    rows: Sequence[Sequence[str]],
    weights: Sequence[float],
    width: float | None = None,
) -> list[float]:
    """Column widths (mm) that sum to ``width`` (default: the page's between its margins):
    each column at least as wide as its widest word in the current font (the first row, the
    headings, in bold), so a number or a word is never cut or run into the next column; the
    width left over is shared out by ``weights``. Raises :class:`NotWideEnough`."""
    total = pdf.epw if width is None else width
    family, size = pdf.font_family, pdf.font_size_pt
    need = [0.0] * len(weights)
    for i, row in enumerate(rows):
        pdf.set_font(family, "B" if i == 0 else "", size)
        for col, text in enumerate(row):
            for word in text.split():
                wide = pdf.get_string_width(latin1(word)) + 2 * CELL_PAD_X + 0.2
                need[col] = max(need[col], wide)
    pdf.set_font(family, "", size)
    if sum(need) > total:
        raise NotWideEnough(f"{sum(need):.1f} mm of words in {total:.1f} mm")
    widths = list(need)
    free = set(range(len(weights)))  # the columns that take a share of the width left over
    while free:
        room = total - sum(need[c] for c in range(len(need)) if c not in free)
        share = sum(weights[c] for c in free)
        widths = [need[c] if c not in free else room * weights[c] / share for c in range(len(need))]
        short = {c for c in free if widths[c] < need[c]}
        if not short:
            break
        free -= short
    return [max(w, n) for w, n in zip(widths, need, strict=True)]


def fitted_table(
    pdf: FPDF,
    rows: Sequence[Sequence[str]],
    weights: Sequence[float],
    text_align: Sequence[str],
    *,
    bold_rows: Sequence[int] = (),
    size: float = 8,
) -> None:
    """``rows`` (the first one the headings) as a table across the page between its margins
    (:func:`fit_widths`), at font ``size`` or, when its words do not fit, the largest smaller
    size down to :data:`SMALLEST_FONT` that fits; the rows numbered in ``bold_rows`` (counting
    the headings as 0) in bold. When not even that fits (a word longer than a column could
    be), the columns share the width by ``weights`` and fpdf2 breaks the long word inside its
    cell: cut, but on the page."""
    family = pdf.font_family or "helvetica"
    while True:
        pdf.set_font(family, "", size)
        try:
            widths = fit_widths(pdf, rows, weights)
            break
        except NotWideEnough:
            if size <= SMALLEST_FONT:
                widths = [pdf.epw * w / sum(weights) for w in weights]
                break
            size = max(SMALLEST_FONT, size - 0.5)
    with table(pdf, widths, text_align, width=sum(widths), padding=(0.6, CELL_PAD_X)) as t:
        for i, row in enumerate(rows):
            t.row([latin1(c) for c in row], style=bold() if i in bold_rows and i else None)
