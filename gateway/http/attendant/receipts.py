"""Receipts (struk) of every registered kind (:mod:`gateway.receipts`: the model, the 58 mm
layout, ESC/POS), and the deposit kind:

GET  /petugas/struk/{kind}/{ref}               the receipt as a page (58 mm print stylesheet)
GET  /petugas/api/struk/{kind}/{ref}           the receipt as JSON (its lines, the text as printed)
POST /petugas/api/struk/{kind}/{ref}/cetak     print it on the bank's ESC/POS printer

The deposit (``setoran``, ref: the event id) shows what the ledger will credit, never another
figure: once the ledger has applied the deposit (the sync learns its amount and price, see
:meth:`AttendantService.sync_applied <gateway.http.attendant.service.AttendantService>`), the
ledger's; before that, an estimate at the freshest price list the gateway holds, marked
``PERKIRAAN / estimate``.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from gateway import receipts
from gateway.attendant_store import JournalEntry
from gateway.http.attendant.auth import CsrfDep, Service, SignedInDep
from gateway.http.attendant.pages import templates
from gateway.http.attendant.service import AttendantService
from gateway.receipts import Line, Receipt
from wastebank.errors import NotFound, WastebankError
from wastebank.formats import kg, rupiah, tanggal_waktu, unit_price
from wastebank.money_rules import amount_for

log = logging.getLogger("wastebank.gateway")

router = APIRouter(prefix="/petugas", tags=["attendant"])

DEPOSIT: Final = "setoran"


class ReceiptView(BaseModel):
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


async def _load(service: AttendantService, kind: str, ref: str) -> Receipt:
    try:
        return await receipts.load(service, kind, ref)
    except WastebankError as exc:
        raise HTTPException(exc.status, str(exc) or exc.title) from None


@router.get("/struk/{kind}/{ref}", response_class=HTMLResponse)
async def receipt_page(
    kind: str, ref: str, request: Request, signed: SignedInDep, service: Service
) -> HTMLResponse:
    try:
        receipt: Receipt | None = await receipts.load(service, kind, ref)
        error, status = None, 200
    except WastebankError as exc:
        receipt, error, status = None, str(exc) or exc.title, exc.status
    return templates().TemplateResponse(
        request,
        "receipt.html",
        {
            "r": None if receipt is None else view(service, receipt),
            "local_time": None if receipt is None else tanggal_waktu(receipt.at, service.tz),
            "estimate_text": receipts.ESTIMATE_TEXT,
            "estimate_note": receipts.ESTIMATE_NOTE,
            "error": error,
            "csrf": signed.csrf,
            "kind": kind,
            "ref": ref,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/struk/{kind}/{ref}")
async def receipt_json(kind: str, ref: str, _: SignedInDep, service: Service) -> ReceiptView:
    return view(service, await _load(service, kind, ref))


class Printed(BaseModel):
    printed: bool
    bytes: int
    message: str


@router.post("/api/struk/{kind}/{ref}/cetak")
async def print_it(kind: str, ref: str, signed: CsrfDep, service: Service) -> Printed:
    receipt = await _load(service, kind, ref)
    printer = service.gw.settings.printer
    try:
        sent = await asyncio.to_thread(receipts.print_receipt, receipt, service.tz, printer)
    except (receipts.NoPrinter, receipts.PrinterUnreachable) as exc:
        log.warning("struk tidak tercetak / receipt not printed: %s %s: %s", kind, ref, exc)
        raise HTTPException(exc.status, str(exc)) from None
    log.info("struk dicetak / receipt printed: %s %s by %s", kind, ref, signed.who.username)
    return Printed(printed=True, bytes=sent, message="struk dicetak / receipt printed")


# ---- the deposit kind -------------------------------------------------------------------------


def _bank_name(service: AttendantService) -> str:
    kept = getattr(service.db.directory, "bank_name", None)  # the shell's sync keeps the name
    name = kept() if callable(kept) else None
    return str(name) if name else f"Bank Sampah {service.gw.settings.bank_code}"


def deposit_figures(
    service: AttendantService, e: JournalEntry
) -> tuple[int | None, int | None, bool]:
    """(price per kg, amount, estimate) of a journal entry, by the rule: the ledger's once it
    has applied the deposit; else the freshest cached price list's (an estimate), never the
    price cached when it was recorded (an admin may have changed it since)."""
    if e.applied_amount_idr is not None:
        return e.applied_price_idr, e.applied_amount_idr, False
    price = service.db.directory.price(e.category_code)
    per_kg = price.price_idr if price is not None and price.unit == "kg" else None
    if per_kg is None:
        per_kg = e.price_per_kg_idr
    return per_kg, None if per_kg is None else amount_for(e.net_g, per_kg), True


def load_deposit(service: AttendantService, ref: str) -> Receipt:
    e = service.db.journal.get(ref)
    if e is None:
        raise NotFound(f"setoran {ref} tidak ada di gateway ini / no such deposit here")
    price = service.db.directory.price(e.category_code)
    member = e.member_name or e.member_no
    if member is None and e.card_uid:
        holder = service.db.directory.by_card(e.card_uid)
        member = holder.name if holder else f"kartu {e.card_uid}"
    per_kg, amount, estimate = deposit_figures(service, e)
    lines = [
        Line("Nasabah", member or "-"),
        *([Line("No. nasabah", e.member_no)] if e.member_no and e.member_name else []),
        Line("Jenis", price.category_name if price else e.category_code),
        Line("Berat", kg(e.net_g)),
        Line("Harga", "-" if per_kg is None else unit_price(per_kg, "kg")),
    ]
    if e.attendant:
        lines.append(Line("Petugas", e.attendant))
    if e.void_state == "done":
        lines.append(Line("** DIBATALKAN / VOIDED **"))
    footer = ("Terima kasih / Thank you",)
    return Receipt(
        kind=DEPOSIT,
        title="STRUK SETORAN / DEPOSIT",
        reference=e.event_id,
        at=e.recorded_at,
        bank_name=_bank_name(service),
        lines=tuple(lines),
        total=Line("JUMLAH", "-" if amount is None else rupiah(amount)),
        footer=footer,
        estimate=estimate,
        extra={
            "event_id": e.event_id,
            "applied": not estimate,
            "price_per_kg_idr": per_kg,
            "amount_idr": amount,
        },
    )


receipts.register(DEPOSIT, load_deposit)
