"""Receipts (struk) of every registered kind (:mod:`gateway.receipts`: the model, the 58 mm
layout, ESC/POS):

GET  /petugas/struk/{kind}/{ref}               the receipt as a page (58 mm print stylesheet)
GET  /petugas/api/struk/{kind}/{ref}           the receipt as JSON (its lines, the text as printed)
POST /petugas/api/struk/{kind}/{ref}/cetak     print it on the bank's ESC/POS printer

The deposit kind (``setoran``) is :mod:`.deposit_receipt`, registered by its import here.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Final
from urllib.parse import quote

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway import receipts
from gateway.http.attendant import auth, deposit_receipt
from gateway.http.attendant.pages import render
from gateway.http.attendant.service import AttendantService, SignedIn
from gateway.http.routing import Routes, json_response, path_param
from gateway.receipts import Receipt
from wastebank.errors import WastebankError
from wastebank.formats import tanggal_waktu

log = logging.getLogger("wastebank.gateway")

routes = Routes(prefix="/petugas")

KINDS: Final = (deposit_receipt.DEPOSIT,)
"""Kinds registered by this package's own modules (others register theirs at their import)."""


class ReceiptView(msgspec.Struct, kw_only=True):
    kind: str
    title: str
    reference: str
    at: datetime
    bank_name: str
    lines: list[tuple[str, str]]
    total: tuple[str, str] | None
    footer: list[str]
    estimate: bool
    text: str
    """As the printer prints it (ASCII, the configured columns)."""
    printer: bool
    """Whether a receipt printer is configured here."""
    extra: dict[str, object]


def _columns(service: AttendantService) -> int:
    return int(service.gw.settings.printer.columns)


def view(service: AttendantService, r: Receipt) -> ReceiptView:
    return ReceiptView(
        kind=r.kind,
        title=r.title,
        reference=r.reference,
        at=r.at,
        bank_name=r.bank_name,
        lines=[(x.label, x.value) for x in r.lines],
        total=None if r.total is None else (r.total.label, r.total.value),
        footer=list(r.footer),
        estimate=r.estimate,
        text=receipts.text(r, service.tz, _columns(service)),
        printer=service.gw.settings.printer.kind != "none",
        extra=dict(r.extra),
    )


async def _load(service: AttendantService, kind: str, ref: str, signed: SignedIn) -> Receipt:
    try:
        return await receipts.load(service, kind, ref, reader=signed.who.username)
    except WastebankError as exc:
        raise HTTPException(exc.status, str(exc) or exc.title) from None


@routes.get("/struk/{kind}/{ref}")
async def receipt_page(request: Request) -> HTMLResponse:
    signed, service = auth.signed_in(request), auth.service(request)
    kind, ref = path_param(request, "kind"), path_param(request, "ref")
    nav = receipts.nav_of(kind)
    receipt: Receipt | None = None
    error, status = None, 200
    try:
        receipt = await receipts.load(service, kind, ref, reader=signed.who.username)
    except WastebankError as exc:
        error, status = str(exc) or exc.title, exc.status
    return render(
        service,
        request,
        signed,
        "receipt.html",
        status=status,
        nav_key=nav,
        back=receipts.NAV_PAGES[nav],
        estimate_text=receipts.ESTIMATE_TEXT,
        estimate_note=receipts.ESTIMATE_NOTE,
        print_url=f"/petugas/api/struk/{quote(kind)}/{quote(ref)}/cetak",
        receipt_error=error,
        r=None if receipt is None else view(service, receipt),
        local_time=None if receipt is None else tanggal_waktu(receipt.at, service.tz),
    )


@routes.get("/api/struk/{kind}/{ref}")
async def receipt_json(request: Request) -> Response:
    signed, service = auth.signed_in(request), auth.service(request)
    kind, ref = path_param(request, "kind"), path_param(request, "ref")
    receipt = view(service, await _load(service, kind, ref, signed))
    # a member's data, a PIN slip's PIN: kept by no cache (the page is no-store too)
    return json_response(receipt, headers={"Cache-Control": "no-store"})


class Printed(msgspec.Struct, kw_only=True):
    printed: bool
    bytes: int
    message: str


@routes.post("/api/struk/{kind}/{ref}/cetak")
async def print_it(request: Request) -> Printed:
    signed, service = await auth.csrf_checked(request), auth.service(request)
    kind, ref = path_param(request, "kind"), path_param(request, "ref")
    receipt = await _load(service, kind, ref, signed)
    printer = service.gw.settings.printer
    try:
        sent = await asyncio.to_thread(receipts.print_receipt, receipt, service.tz, printer)
    except (receipts.NoPrinter, receipts.PrinterUnreachable) as exc:
        log.warning("struk tidak tercetak / receipt not printed: %s %s: %s", kind, ref, exc)
        raise HTTPException(exc.status, str(exc)) from None
    log.info("struk dicetak / receipt printed: %s %s by %s", kind, ref, signed.who.username)
    return Printed(printed=True, bytes=sent, message="struk dicetak / receipt printed")
