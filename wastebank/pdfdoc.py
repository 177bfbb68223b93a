"""The PDF documents the passbook and the reports print, set up once: fpdf2 with its core fonts
(Helvetica covers Latin-1, so no font file ships: text goes through
:func:`wastebank.formats.latin1`), the same margins, creator and title, a footer with the page
number on every page, and tables with horizontal rules and bold headings.

fpdf2 is imported when a document is made, not with this module: a process that never prints
(an ingester, a CLI command) does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from wastebank.formats import latin1

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.fonts import FontFace
    from fpdf.table import Table

__all__ = ["A6", "bold", "document", "table"]

A6 = (105, 148)  # mm, portrait: a receipt


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
