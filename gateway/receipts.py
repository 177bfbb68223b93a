"""Receipts (struk) of the attendant's day: one model, one 58 mm layout, one way to print.

The contract for every kind of receipt (deposit, withdrawal, sale, PIN slip, day sheet):

1. Build a :class:`Receipt`: ``kind`` (the URL's ``{kind}``, e.g. ``"setoran"``), ``title``
   (``"STRUK SETORAN / DEPOSIT"``), ``reference`` (the id printed on it), ``at`` (an *aware*
   datetime: when the thing happened; shown in the bank's zone), ``bank_name``, ``lines``
   (:class:`Line`: a label and a value, e.g. ``Line("Berat", "1,25 kg")``; a line with an empty
   value is a text of its own, wrapped over the width), ``total`` (a :class:`Line` or None:
   printed below a rule, value right-aligned), ``footer`` (short texts, centred) and
   ``estimate`` (True while the figures are not the ledger's yet: the receipt says
   ``PERKIRAAN / estimate`` in its title block and under its total); ``reader`` (the one
   attendant who may open or print it, e.g. a PIN slip's issuer; default: every attendant
   signed in at the gateway; anyone else gets 404). Format the values with
   :mod:`wastebank.formats` (``rupiah``, ``kg``, ``unit_price``) before they go in: a receipt
   only lays text out.

2. Register a loader for the kind, once, at the import of your module (which the router list
   in :mod:`gateway.http.attendant` imports)::

       from gateway import receipts

       def load_withdrawal(service: AttendantService, ref: str) -> receipts.Receipt:
           ...  # raise wastebank.errors.NotFound("... / ...") when there is no such thing
       receipts.register("penarikan", load_withdrawal, nav="penarikan")

   ``loader(service, ref)`` returns a :class:`Receipt` or an awaitable of one (an ``async def``
   loader may ask the central API through :class:`gateway.central.Central`); it raises
   :class:`wastebank.errors.NotFound` (404) or another :class:`wastebank.errors.WastebankError`
   (its ``status`` and message are the answer). Nothing else to wire: the routes of
   :mod:`gateway.http.attendant.receipts` serve every registered kind:

   * ``GET  /petugas/struk/{kind}/{ref}``             the receipt as a page (58 mm print
     stylesheet; buttons "Cetak" (the browser's print) and "Cetak ke printer struk")
   * ``POST /petugas/api/struk/{kind}/{ref}/cetak``   print it on the bank's ESC/POS printer
     (session + CSRF): 200 ``{"printed": true, ...}``; 503 with an Indonesian-first ``detail``
     when no printer is configured (``[printer]`` in the site file) or it cannot be reached

   Link to the page from yours (``/petugas/struk/penarikan/W-123``), or print from your script
   with ``WB.api("POST", "/petugas/api/struk/penarikan/W-123/cetak")``.

3. Layout (:func:`text_lines`): ``width`` columns of Font A, 32 for 58 mm paper (48 for 80 mm);
   names wrap, amounts are right-aligned, what a thermal printer's code page may lack is
   transliterated (:func:`wastebank.formats.ascii_text`). :func:`escpos_bytes` is the exact byte
   stream a printer gets: ``ESC @`` (initialise), Font A, the text, a feed and a cut, rendered
   through python-escpos's ``Dummy`` printer; :func:`print_receipt` sends those bytes to the
   configured USB or serial (Bluetooth SPP ``/dev/rfcomm0``, USB-serial ``/dev/ttyUSB0``)
   printer. python-escpos is imported only when a receipt is printed or its bytes are made: the
   gateway runs on a Pi and most banks print from the browser.

Money shown on a receipt is the ledger's rule (see :mod:`gateway.http.attendant.receipts` for
the deposit kind): a figure the ledger has not confirmed is shown only with ``estimate=True``.
"""

from __future__ import annotations

import contextlib
import inspect
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from wastebank.errors import NotFound, SetupError, Unavailable
from wastebank.formats import ascii_text, tanggal_waktu

if TYPE_CHECKING:
    from gateway.settings import PrinterSettings

__all__ = [
    "ESTIMATE_TEXT",
    "WIDTHS",
    "Line",
    "Loader",
    "NoPrinter",
    "PrinterUnreachable",
    "Receipt",
    "escpos_bytes",
    "kinds",
    "load",
    "nav_of",
    "print_receipt",
    "register",
    "text",
    "text_lines",
]

WIDTHS: Final = (32, 48)
"""Font A columns: 58 mm paper (48 mm printable, 384 dots / 12 dots a character), 80 mm."""
ESTIMATE_TEXT: Final = "PERKIRAAN / estimate"
ESTIMATE_NOTE: Final = "Jumlah pasti menurut buku besar / final amount per the ledger"
FEED_LINES: Final = 3
"""Blank lines after the text, so the cut does not take the last line (the cutter sits a few
lines above the print head)."""


@dataclass(frozen=True)
class Line:
    """One row: ``label`` left, ``value`` right-aligned; an empty ``value`` makes ``label`` a
    text of its own (wrapped)."""

    label: str
    value: str = ""


@dataclass(frozen=True)
class Receipt:
    kind: str
    title: str
    reference: str
    at: datetime
    bank_name: str
    lines: tuple[Line, ...] = ()
    total: Line | None = None
    footer: tuple[str, ...] = ()
    estimate: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Whatever a kind's page script wants besides the text (e.g. the deposit's ``event_id``,
    its ``applied`` flag); shown nowhere by the layout, given in the JSON view."""
    reader: str | None = field(default=None, compare=False)
    """The one attendant (username) who may see and print it, e.g. a PIN slip's issuer: the
    slip's reference may reach others (a shared phone's history, the gateway's access log), the
    PIN must not. None: every attendant signed in at the bank's gateway."""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Receipt.at needs a time zone")


# ---- layout -----------------------------------------------------------------------------------


def _centred(value: str, width: int) -> list[str]:
    return [s.center(width).rstrip() for s in textwrap.wrap(value, width)] or [""]


def _pair(line: Line, width: int) -> list[str]:
    """``label`` left and ``value`` right on one line when they fit; else the label wrapped
    over the width and the value right-aligned below it (a long value wrapped too)."""
    label, value = line.label, line.value
    if not value:
        return textwrap.wrap(label, width) or [""]
    if len(label) + 1 + len(value) <= width:
        return [label + " " * (width - len(label) - len(value)) + value]
    out = textwrap.wrap(label, width)
    out += [s.rjust(width) for s in textwrap.wrap(value, width)]
    return out


def text_lines(receipt: Receipt, tz: ZoneInfo, width: int = 32) -> list[str]:
    """The receipt as lines of at most ``width`` characters, ASCII only (a printer's code page)."""
    if width not in WIDTHS:
        raise ValueError(f"a receipt is {' or '.join(map(str, WIDTHS))} columns wide")
    a = ascii_text
    rule = "-" * width
    out = [*_centred(a(receipt.bank_name), width), rule, *_centred(a(receipt.title), width)]
    if receipt.estimate:
        out += _centred(f"** {ESTIMATE_TEXT} **", width)
    out += [
        rule,
        *_pair(Line("No", a(receipt.reference)), width),
        *_pair(Line("Waktu", a(tanggal_waktu(receipt.at, tz))), width),
        rule,
    ]
    for line in receipt.lines:
        out += _pair(Line(a(line.label), a(line.value)), width)
    if receipt.total is not None:
        out += [rule, *_pair(Line(a(receipt.total.label), a(receipt.total.value)), width)]
        if receipt.estimate:
            out += _centred(f"({ESTIMATE_TEXT})", width)
            out += _centred(ESTIMATE_NOTE, width)
    out.append(rule)
    for note in receipt.footer:
        out += _centred(a(note), width)
    return out


def text(receipt: Receipt, tz: ZoneInfo, width: int = 32) -> str:
    """:func:`text_lines` joined, one newline after each."""
    return "".join(f"{s}\n" for s in text_lines(receipt, tz, width))


# ---- ESC/POS ----------------------------------------------------------------------------------


class NoPrinter(SetupError):
    """No receipt printer is configured at this gateway (``[printer]`` of the site file)."""

    status = 503
    title = "printer struk belum diatur / no receipt printer configured"


class PrinterUnreachable(Unavailable):
    """The configured printer cannot be opened or written to now (unplugged, off, paper door
    open, Bluetooth not paired, no permission on the device)."""

    title = "printer struk tidak terjangkau / receipt printer unreachable"


def escpos_bytes(receipt: Receipt, tz: ZoneInfo, width: int = 32, *, cut: bool = True) -> bytes:
    """The bytes a printer gets: ``ESC @``, Font A left-aligned, :func:`text_lines`, a feed and
    (with ``cut``) a cut, rendered by python-escpos's ``Dummy`` printer."""
    from escpos.printer import Dummy

    printer = Dummy()
    printer.hw("INIT")  # ESC @: whatever a previous job left set is reset
    printer.set(align="left", font="a", bold=False, double_height=False, double_width=False)
    printer.text(text(receipt, tz, width))
    printer.text("\n" * FEED_LINES)
    if cut:
        printer.cut(feed=False)
    return bytes(printer.output)


def _open(settings: PrinterSettings) -> Any:
    """The python-escpos printer ``settings`` name (it opens the device when first written)."""
    if settings.kind == "file":
        from escpos.printer import File

        assert settings.path is not None
        return File(devfile=str(settings.path), auto_flush=True)
    if settings.kind == "usb":
        from escpos.printer import Usb

        assert settings.usb_vendor_id is not None
        assert settings.usb_product_id is not None
        return Usb(
            settings.usb_vendor_id,
            settings.usb_product_id,
            timeout=int(settings.timeout_s * 1000),
            in_ep=settings.usb_in_ep,
            out_ep=settings.usb_out_ep,
        )
    from escpos.printer import Serial

    assert settings.path is not None
    return Serial(
        devfile=str(settings.path),
        baudrate=settings.baudrate,
        timeout=settings.timeout_s,
        dsrdtr=settings.serial_dsrdtr,
    )


def _where(settings: PrinterSettings) -> str:
    if settings.kind == "usb":
        return f"USB {settings.usb_vendor_id or 0:04x}:{settings.usb_product_id or 0:04x}"
    return str(settings.path)


def print_receipt(receipt: Receipt, tz: ZoneInfo, settings: PrinterSettings) -> int:
    """Print on the configured printer (blocking I/O: call it in a thread); the bytes sent.
    :class:`NoPrinter` without one, :class:`PrinterUnreachable` when it fails."""
    if settings.kind == "none":
        raise NoPrinter(
            "printer struk belum diatur; isi [printer] di berkas situs gateway, atau cetak dari "
            "peramban / no receipt printer: set [printer] in the gateway's site file, or print "
            "from the browser"
        )
    try:
        data = escpos_bytes(receipt, tz, settings.columns, cut=settings.cut)
    except ImportError:  # an optional install: a gateway that prints from the browser lacks it
        raise NoPrinter(
            "python-escpos belum terpasang di gateway: pip install 'wastebank[printer]' / "
            "python-escpos is not installed on the gateway"
        ) from None
    printer = None
    try:
        printer = _open(settings)
        printer._raw(data)  # python-escpos opens the device on first use
    except Exception as exc:  # pyusb, pyserial and python-escpos raise their own families
        raise PrinterUnreachable(
            f"printer struk di {_where(settings)} tidak terjangkau (kabel, daya, kertas, "
            f"izin perangkat?) / receipt printer at {_where(settings)} unreachable: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        if printer is not None:
            with contextlib.suppress(Exception):  # closing a device that failed to open
                printer.close()
    return len(data)


# ---- kinds ------------------------------------------------------------------------------------

Loader = Callable[[Any, str], "Receipt | Awaitable[Receipt]"]
"""``loader(service, ref)``: ``service`` is the :class:`~gateway.http.attendant.AttendantService`
(typed ``Any`` here: this module is below the HTTP package, which imports it)."""
_loaders: dict[str, Loader] = {}
_nav: dict[str, str] = {}
NAV_PAGES: Final = {
    "timbang": "/petugas",
    "penarikan": "/petugas/penarikan",
    "nasabah": "/petugas/nasabah",
    "stok": "/petugas/stok",
    "hari": "/petugas/hari-ini",
}
"""The frame's nav keys and their pages (gateway/templates/petugas_base.html)."""


def register(kind: str, loader: Loader, *, nav: str) -> None:
    """Serve ``kind``'s receipts with ``loader(service, ref)``; ``nav`` is the frame's tab the
    receipt page belongs to (highlighted on it; its "back" link goes there): ``timbang``,
    ``penarikan``, ``nasabah``, ``stok`` or ``hari``; required, so a new kind cannot land in
    the weighing tab by default. Registering a kind twice with another loader is a
    mistake (two engineers, one URL) and raises ``ValueError``."""
    if not kind.replace("-", "").isalnum() or kind != kind.lower():
        raise ValueError(f"receipt kind {kind!r}: lower-case letters, digits and '-'")
    if nav not in NAV_PAGES:
        raise ValueError(f"nav {nav!r} is not one of {', '.join(NAV_PAGES)}")
    if _loaders.get(kind, loader) is not loader:
        raise ValueError(f"receipt kind {kind!r} is registered already")
    _loaders[kind] = loader
    _nav[kind] = nav


def nav_of(kind: str) -> str:
    """The frame's tab of ``kind``'s receipt page (``timbang`` for an unknown kind)."""
    return _nav.get(kind, "timbang")


def kinds() -> list[str]:
    return sorted(_loaders)


NOT_YOURS: Final = (
    "struk ini hanya untuk petugas yang membuatnya / this receipt is only for the attendant who "
    "made it"
)


async def load(service: Any, kind: str, ref: str, *, reader: str | None = None) -> Receipt:
    """The receipt ``kind``'s loader makes for ``ref``, as ``reader`` (the signed-in attendant's
    username) may see it; :class:`NotFound` for a kind nobody registered, and for a receipt
    kept for another attendant (:attr:`Receipt.reader`)."""
    loader = _loaders.get(kind)
    if loader is None:
        raise NotFound(f"jenis struk {kind!r} tidak dikenal / no such kind of receipt")
    made = loader(service, ref)
    receipt = await made if inspect.isawaitable(made) else made
    assert isinstance(receipt, Receipt)
    if receipt.reader is not None and receipt.reader != reader:
        raise NotFound(NOT_YOURS)
    return receipt
