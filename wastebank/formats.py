"""Money, weights, numbers and local dates as people in Indonesia read them (id-ID), written once.

Money is integer Rupiah and weights integer grams everywhere else; only what a person reads is
formatted, here: ``Rp12.500``, ``1,25 kg``, ``1.234,5``, ``12,34 %``, ``23 Nov 2026 09.30 WIT``
(dot thousands, comma decimals, Indonesian writes a time 09.30 and names its three zones WIB,
WITA and WIT). English pages get English month names, the numbers stay Indonesian.

Bilingual text: a pair ``(Bahasa Indonesia, English)`` and :func:`in_lang` / :func:`bilingual`
pick one by the reader's language, Indonesian unless English is asked for.

Also the text a limited output can print: :func:`ascii_text` (a thermal printer's code page),
:func:`latin1` (the PDF core fonts, so no font file ships), :func:`csv_text` (a CSV cell a
spreadsheet will not run as a formula), :func:`xlsx_text_cells` (the same for an XLSX workbook)
and :func:`terminal_text` (a terminal or a log line: control characters escaped).

Core: no domain module, no SQLAlchemy; the gateway may use it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

__all__ = [
    "MONTHS_EN",
    "MONTHS_ID",
    "MONTH_NAMES_ID",
    "UNIT_LABELS",
    "ZONE_LABELS",
    "Lang",
    "Pair",
    "ascii_text",
    "bilingual",
    "bulan",
    "csv_text",
    "in_lang",
    "xlsx_text_cells",
    "kg",
    "latin1",
    "litres",
    "mass",
    "mass_unit",
    "number",
    "percent",
    "quantity_text",
    "rupiah",
    "tanggal",
    "tanggal_waktu",
    "terminal_text",
    "thousands",
    "TONNES_FROM_G",
    "unaccented",
    "unit_price",
    "zone_label",
]

Lang = Literal["id", "en"]
Pair = tuple[str, str]
"""A text in Bahasa Indonesia and in English, in that order."""

MONTHS_ID = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NAMES_ID = (
    "Januari", "Februari", "Maret", "April", "Mei", "Juni",
    "Juli", "Agustus", "September", "Oktober", "November", "Desember",
)  # fmt: skip
# A category's unit (the ledger's ``Unit``) as a price or a quantity is written with it.
UNIT_LABELS = {"kg": "kg", "piece": "pcs", "litre": "L"}
# Indonesia's three zones by their offset from UTC (hours): WIB, WITA, WIT.
ZONE_LABELS = {7: "WIB", 8: "WITA", 9: "WIT"}


# ---- bilingual text ----------------------------------------------------------------------------


def in_lang(pair: Pair, lang: Lang) -> str:
    """The pair's English text for ``"en"``, its Indonesian one otherwise."""
    return pair[1] if lang == "en" else pair[0]


def bilingual(key: str, lang: Lang, *tables: Mapping[str, Pair]) -> str:
    """``key``'s text in ``lang`` from the first of ``tables`` that has it (a page's own words
    before the shared ones); the key itself when none has it."""
    for table in tables:
        pair = table.get(key)
        if pair is not None:
            return in_lang(pair, lang)
    return key


# ---- numbers ----------------------------------------------------------------------------------


def thousands(n: int) -> str:
    """``12.345``: dot thousands."""
    return f"{n:,}".replace(",", ".")


def rupiah(amount: int) -> str:
    """``Rp12.500``; ``-Rp12.500`` below zero."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{thousands(abs(amount))}"


def kg(grams: int) -> str:
    """``1,25 kg``: comma decimals, dot thousands; two decimals, three when grams need them."""
    sign = "-" if grams < 0 else ""
    whole, rest = divmod(abs(grams), 1000)
    decimals = f"{rest:03d}"
    if decimals.endswith("0"):
        decimals = decimals[:2]
    return f"{sign}{thousands(whole)},{decimals} kg"


# One rule for kg or t: a mass below 10 t reads in kg (1.234,5 kg), from 10 t in tonnes
# (88.298,0 t). A figure that people compare in one table or chart takes the unit of its
# largest value (:func:`mass_unit`), so a column never mixes kg and t.
TONNES_FROM_G = 10_000_000


def mass_unit(largest_g: int) -> Literal["kg", "t"]:
    """The unit a mass (or a table whose largest mass is ``largest_g``) is written in."""
    return "t" if abs(largest_g) >= TONNES_FROM_G else "kg"


def mass(grams: int, unit: Literal["kg", "t"] | None = None) -> str:
    """``1.234,5 kg`` below 10 t, ``88.298,0 t`` from 10 t (``unit``: the table's, see
    :func:`mass_unit`); one decimal, dot thousands, comma decimals."""
    if (unit or mass_unit(grams)) == "t":
        return f"{number(grams / 1_000_000, 1)} t"
    return f"{number(grams / 1000, 1)} kg"


def litres(millilitres: int) -> str:
    """``1,5 L``."""
    whole, rest = divmod(millilitres, 1000)
    return f"{thousands(whole)},{f'{rest:03d}'.rstrip('0') or '0'} L"


def quantity_text(unit: str, net_g: int, quantity: int | None) -> str:
    """What was deposited, in its category's unit (the ledger's ``kg``, ``piece``, ``litre``):
    ``1,25 kg``, ``12 pcs``, ``1,5 L``; kg when a count is missing."""
    if unit == "piece" and quantity is not None:
        return f"{thousands(quantity)} pcs"
    if unit == "litre" and quantity is not None:
        return litres(quantity)
    return kg(net_g)


def unit_price(price_idr: int, unit: str) -> str:
    """``Rp4.000/kg``, ``Rp500/pcs``, ``Rp3.000/L``."""
    return f"{rupiah(price_idr)}/{UNIT_LABELS.get(unit, unit)}"


def number(value: float | None, places: int = 1, *, missing: str = "-") -> str:
    """``12.345,6``: dot thousands, comma decimals, ``places`` decimals; ``missing`` for None
    (a page shows an en dash, a PDF's core fonts have none)."""
    if value is None:
        return missing
    whole = round(value, places)
    sign = "-" if whole < 0 else ""
    head, _, tail = f"{abs(whole):.{places}f}".partition(".")
    return sign + thousands(int(head)) + ("," + tail if tail else "")


def percent(value: float | None, places: int = 2, *, missing: str = "-") -> str:
    """``12,34 %`` of a value already in percent."""
    return missing if value is None else f"{number(value, places)} %"


# ---- dates ------------------------------------------------------------------------------------


def zone_label(tz: ZoneInfo, at: datetime | None = None) -> str:
    """WIB, WITA or WIT for an Indonesian zone; the zone's own abbreviation otherwise."""
    local = (at or datetime.now(UTC)).astimezone(tz)
    offset = local.utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset is not None else 0
    if offset is not None and offset.total_seconds() % 3600 == 0 and hours in ZONE_LABELS:
        return ZONE_LABELS[hours]
    return local.tzname() or tz.key


def tanggal(day: date, lang: Lang = "id") -> str:
    """``23 Nov 2026`` (``23 Agu 2026``; English month names with ``lang="en"``)."""
    months = MONTHS_EN if lang == "en" else MONTHS_ID
    return f"{day.day} {months[day.month - 1]} {day.year}"


def bulan(day: date, lang: Lang = "id") -> str:
    """``Nov 2026``: the month of ``day``."""
    months = MONTHS_EN if lang == "en" else MONTHS_ID
    return f"{months[day.month - 1]} {day.year}"


def tanggal_waktu(at: datetime, tz: ZoneInfo, lang: Lang = "id") -> str:
    """``23 Nov 2026 09.30 WIT``: the local date and time in ``tz`` (Indonesian writes 09.30).
    A time that cannot be moved to ``tz`` (year 1 or 9999 beyond the date line) is shown in
    its own offset, ``31 Des 9999 23.59 UTC-12:00``, not raised."""
    try:
        local = at.astimezone(tz)
        label = zone_label(tz, at)
    except OverflowError:
        local, label = at, "UTC" + at.isoformat(timespec="minutes")[16:]  # '+14:00'
    return f"{tanggal(local.date(), lang)} {local:%H.%M} {label}"


# ---- text for limited outputs -----------------------------------------------------------------


def unaccented(text: str) -> str:
    """``text`` without its accents (NFKD, combining marks dropped): "José" -> "Jose"."""
    return "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )


# Typographic punctuation has a plain equivalent that keeps the meaning: the estimates' basis
# writes "credit − composting", which must not print as "credit ? composting".
_PLAIN_PUNCTUATION = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
    }
)


def ascii_text(text: str) -> str:
    """What a thermal printer's code page surely has: accents dropped, typographic dashes and
    quotes made plain, others as '?'."""
    plain = unaccented(text).translate(_PLAIN_PUNCTUATION)
    return "".join(ch if ch.isascii() else "?" for ch in plain)


_CONTROL_ESCAPES = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    **{ord("\t"): "\\t", ord("\n"): "\\n", ord("\r"): "\\r"},
}


def terminal_text(text: str) -> str:
    """``text`` from outside (a device's, a topic, a field name) as a terminal or a log line can
    show it: every control character (C0, DEL, C1) as its escape (``\\x1b``, ``\\n``), so it
    can neither send the terminal a command (clear, colours, a window title, the clipboard)
    nor start a forged line."""
    return text.translate(_CONTROL_ESCAPES)


def latin1(text: str) -> str:
    """The PDF core fonts (Helvetica) cover Latin-1; anything else loses its accent or becomes
    '?', so no font file needs to ship."""
    out = []
    for ch in text:
        try:
            ch.encode("latin-1")
        except UnicodeEncodeError:
            ch = ascii_text(ch) or "?"
        out.append(ch)
    return "".join(out)


def csv_text(value: str) -> str:
    """Text for a CSV cell that a spreadsheet will not run as a formula (``=``, ``+``, ``-``,
    ``@`` first: CSV injection); unchanged otherwise."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def xlsx_text_cells(workbook: Any) -> Any:
    """Every text cell of an openpyxl workbook written as a string, which Excel shows and never
    evaluates, and returned. openpyxl takes any text beginning ``=`` for a formula (and ``#N/A``
    and the like for an error): a bank or category named ``=HYPERLINK(...)`` would run when the
    file is opened (XLSX formula injection). Call it on every workbook the project writes, just
    before saving; the project writes no formulas of its own."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
    return workbook
