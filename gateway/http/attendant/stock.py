"""The stock page (stok): sales to a pengepul, transfers to the induk, residue, and the stock per
category; the receipt kind ``penjualan``.

GET  /petugas/stok                       the page
GET  /petugas/api/stock                  the stock per category (the central API's, or the last
                                         copy while offline), the pengepul, the categories, and
                                         the movements asked here today (sent, queued, refused)
POST /petugas/api/stock/sales            {key, collector, category, grams, price_per_kg_idr,
                                         payment_method, note}: 201 sent, 202 queued
POST /petugas/api/stock/transfers        {key, category, grams, received_g?, note}: 201 / 202
POST /petugas/api/stock/residue          {key, category, grams, kind, note}: 201 / 202
GET  /petugas/struk/penjualan/{key}      a sale's receipt (gateway.receipts)

**Offline.** A movement is kept in the gateway's file first under the ``key`` the page drew for
it (its client id), then sent to the central API with the signed-in attendant's token and
``{gateway}.{key}`` as its idempotency key: while the internet is down it waits (202, shown as
queued) and is sent by the service's sync (:data:`SYNC_PARTS`) when the API answers again; sent
twice, it is recorded once. The ledger may still refuse it then (more than the stock held: the
page shows the refusal and its reason). The stock shown offline is the last one the central API
gave, with its time; queued movements are not in it yet.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final, Literal

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse

from gateway import receipts
from gateway.central import RateLimited, Refused, Unreachable
from gateway.http.attendant.auth import csrf_checked, signed_in
from gateway.http.attendant.auth import service as attendant_service
from gateway.http.attendant.pages import bank_name, render
from gateway.http.attendant.service import SYNC_PARTS, AttendantService, Who
from gateway.http.routing import Routes, parse_input
from gateway.receipts import Line, Receipt
from gateway.stock_store import MoveKind, QueuedMove
from wastebank.errors import NotFound
from wastebank.formats import kg, rupiah, tanggal_waktu
from wastebank.money_rules import amount_for

log = logging.getLogger("wastebank.gateway")

routes = Routes(prefix="/petugas")

KIND: Final = "penjualan"
RETRY_S: Final = 5.0
_refused_status: dict[str, int] = {}
"""The central API's status of a movement it refused in this run (for the page's answer)."""
MAX_G: Final = 10**9
MAX_IDR: Final = 10**12
PATHS: Final[dict[str, str]] = {"sale": "sales", "transfer": "transfers", "residue": "residue"}
KIND_TEXT: Final[dict[str, str]] = {
    "sale": "penjualan / sale",
    "transfer": "kirim ke induk / transfer",
    "residue": "residu ke TPA / residue",
}
STATE_TEXT: Final[dict[str, str]] = {
    "pending": "antri / queued",
    "sent": "tercatat / recorded",
    "refused": "ditolak / refused",
}
METHOD_TEXT: Final[dict[str, str]] = {
    "cash": "tunai / cash",
    "bank_transfer": "transfer bank",
    "ewallet": "dompet digital / e-wallet",
}
ClientKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{8,40}$")]
Note = Annotated[str, msgspec.Meta(max_length=500)]
Code = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
"""A collector's or a category's code."""
Grams = Annotated[int, msgspec.Meta(ge=1, le=MAX_G)]


class SaleIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: ClientKey
    collector: Code
    category: Code
    grams: Grams
    price_per_kg_idr: Annotated[int, msgspec.Meta(ge=0, le=MAX_IDR)]
    payment_method: Literal["cash", "bank_transfer", "ewallet"] = "cash"
    note: Note = ""


class TransferIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: ClientKey
    category: Code
    grams: Grams
    received_g: Annotated[int, msgspec.Meta(ge=0, le=MAX_G)] | None = None
    note: Note = ""


class ResidueIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    key: ClientKey
    category: Code
    grams: Grams
    kind: Literal["residue", "burned"] = "residue"
    note: Note = ""


class MoveView(msgspec.Struct, kw_only=True):
    key: str
    kind: str
    kind_text: str
    state: str
    state_text: str
    by: str
    asked_at: datetime
    asked_text: str
    category_code: str
    category_name: str
    grams: int
    kg_text: str
    collector_name: str | None = None
    price_per_kg_idr: int | None = None
    revenue_idr: int | None = None
    payment_method: str | None = None
    error: str | None = None
    ledger_id: int | None = None
    receipt_url: str | None = None


class StockView(msgspec.Struct, kw_only=True):
    online: bool
    stock: list[dict[str, Any]]
    """The central API's stock lines (api/schemas.py StockLineOut)."""
    stock_at: datetime | None
    stock_at_text: str | None
    collectors: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    moves: list[MoveView]
    queued: int
    message: str | None = None


# ---- views ------------------------------------------------------------------------------------


def move_view(service: AttendantService, m: QueuedMove) -> MoveView:
    show = m.body.get("show", {})
    api = m.body.get("api", {})
    return MoveView(
        key=m.key,
        kind=m.kind,
        kind_text=KIND_TEXT.get(m.kind, m.kind),
        state=m.state,
        state_text=STATE_TEXT[m.state],
        by=m.by,
        asked_at=m.asked_at,
        asked_text=tanggal_waktu(m.asked_at, service.tz),
        category_code=str(api.get("category", "")),
        category_name=str(show.get("category_name") or api.get("category", "")),
        grams=int(api.get("grams", 0)),
        kg_text=kg(int(api.get("grams", 0))),
        collector_name=show.get("collector_name"),
        price_per_kg_idr=show.get("price_per_kg_idr"),
        revenue_idr=api.get("revenue_idr"),
        payment_method=api.get("payment_method"),
        error=m.error if m.state != "sent" else None,
        ledger_id=(m.answer or {}).get("id"),
        receipt_url=f"/petugas/struk/{KIND}/{m.key}" if m.kind == "sale" else None,
    )


# ---- the central API, with the attendant's token ---------------------------------------------

OFFLINE: Final = (
    "API pusat tidak terjangkau: data dari salinan gateway / the central API cannot be reached: "
    "the gateway's copy is shown"
)


async def _read(service: AttendantService, who: Who, path: str) -> Any | None:
    """``GET /api/banks/{bank}/{path}`` with the attendant's token; None when it cannot be
    asked now (no token: an offline login; an outage)."""
    central = service.api()
    token = service.tokens.get(who.username)
    if central is None or token is None:
        return None
    try:
        body = await central.bank_get(service.gw.settings.bank_code, path, token)
    except (Unreachable, RateLimited) as exc:
        if not isinstance(exc, RateLimited):
            service._unreachable(exc)
        return None
    except Refused as exc:
        service._online(True)
        if exc.status_code == 401:
            service.tokens.pop(who.username, None)
            return None
        raise HTTPException(exc.status_code, exc.detail) from None
    service._online(True)
    return body


async def send(service: AttendantService, m: QueuedMove) -> bool:
    """One queued movement to the central API with its attendant's token; False when the rest
    must wait (an outage, a 429). Without that attendant's token it waits (True: go on)."""
    central = service.api()
    token = service.tokens.get(m.by)
    if central is None or token is None:
        return True
    store = service.db.stock
    now = datetime.now(UTC)
    body = {**m.body["api"], "idempotency_key": f"{service.gw.settings.gateway_id}.{m.key}"}
    try:
        answer = await central.bank_post(service.gw.settings.bank_code, PATHS[m.kind], body, token)
    except RateLimited as exc:
        service._online(True)
        store.retry(m.key, exc.detail, now + timedelta(seconds=exc.retry_after_s or RETRY_S))
        return False
    except Unreachable as exc:
        service._unreachable(exc)
        store.retry(m.key, OFFLINE, now)
        return False
    except Refused as exc:
        service._online(True)
        if exc.status_code == 401:  # the token ended: it waits for a login while online
            service.tokens.pop(m.by, None)
        else:
            store.refused(m.key, exc.detail, now)
            _refused_status[m.key] = exc.status_code
            log.warning("stok ditolak / stock movement refused: %s: %s", m.key, exc.detail)
        return True
    service._online(True)
    store.sent(m.key, answer if isinstance(answer, dict) else {}, now)
    log.info("stok tercatat / stock movement recorded: %s %s", m.kind, m.key)
    return True


async def send_due(service: AttendantService) -> bool:
    """Every movement due, oldest first; True while some still wait."""
    for m in service.db.stock.due(datetime.now(UTC)):
        if not await send(service, m):
            break
    return service.db.stock.pending() > 0


def _part(service: AttendantService) -> Any:
    async def part(_token: str) -> bool:
        return await send_due(service)

    return part


SYNC_PARTS.append(_part)


# ---- routes -----------------------------------------------------------------------------------


@routes.get("/stok")
async def stock_page(request: Request) -> HTMLResponse:
    return render(attendant_service(request), request, signed_in(request), "stock.html")


def _today_start(service: AttendantService) -> datetime:
    local = datetime.now(service.tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


@routes.get("/api/stock")
async def stock(request: Request) -> StockView:
    signed, service = signed_in(request), attendant_service(request)
    await send_due(service)
    store = service.db.stock
    now = datetime.now(UTC)
    held = await _read(service, signed.who, "stock")
    pengepul = await _read(service, signed.who, "collectors") if held is not None else None
    if held is not None:
        store.keep("stock", held, now)
    if pengepul is not None:
        store.keep("collectors", pengepul, now)
    kept_stock, kept_collectors = store.copy("stock"), store.copy("collectors")
    lines = kept_stock[0].get("lines", []) if kept_stock else []
    at = kept_stock[1] if kept_stock else None
    return StockView(
        online=held is not None,
        stock=lines,
        stock_at=at,
        stock_at_text=tanggal_waktu(at, service.tz) if at else None,
        collectors=kept_collectors[0] if kept_collectors else [],
        categories=[
            {"code": p.category_code, "name": p.category_name, "unit": p.unit}
            for p in service.db.directory.prices()
        ],
        moves=[move_view(service, m) for m in store.recent(_today_start(service))],
        queued=store.pending(),
        message=None if held is not None else OFFLINE,
    )


def _category_name(service: AttendantService, code: str) -> str:
    for p in service.db.directory.prices():
        if p.category_code == code:
            return p.category_name
    return code


def _collector_name(service: AttendantService, code: str) -> str:
    kept = service.db.stock.copy("collectors")
    for c in kept[0] if kept else []:
        if c.get("code") == code:
            return str(c.get("name") or code)
    return code


KEY_REUSED: Final = (
    "kunci ini sudah dipakai untuk isi lain; catat lagi dengan kunci baru / this key was used "
    "for another content: record it again with a new key"
)


def _asked(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the page asked, as kept: its kind, the central API's body but the time the gateway
    gave it (every field the page sent, or derived from them), and a sale's price per kg (two
    prices may round to one total)."""
    api = {k: v for k, v in body["api"].items() if k != "at"}
    return {"kind": kind, "api": api, "per_kg": body.get("show", {}).get("price_per_kg_idr")}


async def _ask(
    service: AttendantService, who: Who, key: str, kind: MoveKind, body: dict[str, Any]
) -> JSONResponse:
    store = service.db.stock
    m, new = store.add(key, kind, who.username, body, datetime.now(UTC))
    if not new and m.by != who.username:
        raise HTTPException(409, "kunci sudah dipakai petugas lain / key used by another attendant")
    if not new and _asked(m.kind, m.body) != _asked(kind, body):
        # Answering the first movement would tell the page this one was recorded: it never was
        # (the central API's rule for its idempotency keys, docs/attendant.md "Sales").
        raise HTTPException(409, KEY_REUSED)
    if m.state == "pending":
        await send(service, m)
        m = store.get(key) or m
    view = move_view(service, m)
    if m.state == "refused":
        status = _refused_status.pop(key, 409)
        raise HTTPException(
            status, m.error or "ditolak oleh API pusat / refused by the central API"
        )
    status = 201 if m.state == "sent" else 202
    return JSONResponse(msgspec.to_builtins(view), status_code=status)


@routes.post("/api/stock/sales", status_code=201)
async def sell(request: Request) -> JSONResponse:
    signed, _, body = await parse_input(request, SaleIn, csrf_checked)
    service = attendant_service(request)
    revenue = amount_for(body.grams, body.price_per_kg_idr)  # the one pricing rule
    if revenue > MAX_IDR:  # the central API's bound: refused now, not queued to fail later
        raise HTTPException(
            422,
            f"total penjualan {rupiah(revenue)} melebihi {rupiah(MAX_IDR)}; periksa berat dan "
            f"harga per kg / the sale's total is above {rupiah(MAX_IDR)}: check the weight and "
            "the price per kg",
        )
    api = {
        "category": body.category,
        "grams": body.grams,
        "collector": body.collector,
        "revenue_idr": revenue,
        "payment_method": body.payment_method,
        "note": body.note,
        "at": datetime.now(UTC).isoformat(),  # when it was sold, even if sent later
    }
    show = {
        "collector_name": _collector_name(service, body.collector),
        "category_name": _category_name(service, body.category),
        "price_per_kg_idr": body.price_per_kg_idr,
    }
    return await _ask(service, signed.who, body.key, "sale", {"api": api, "show": show})


@routes.post("/api/stock/transfers", status_code=201)
async def transfer(request: Request) -> JSONResponse:
    signed, _, body = await parse_input(request, TransferIn, csrf_checked)
    service = attendant_service(request)
    api: dict[str, Any] = {"category": body.category, "grams": body.grams, "note": body.note}
    if body.received_g is not None:
        api["received_g"] = body.received_g
    api["at"] = datetime.now(UTC).isoformat()
    show = {"category_name": _category_name(service, body.category)}
    return await _ask(service, signed.who, body.key, "transfer", {"api": api, "show": show})


@routes.post("/api/stock/residue", status_code=201)
async def residue(request: Request) -> JSONResponse:
    signed, _, body = await parse_input(request, ResidueIn, csrf_checked)
    service = attendant_service(request)
    api = {
        "category": body.category,
        "grams": body.grams,
        "kind": body.kind,
        "note": body.note,
        "at": datetime.now(UTC).isoformat(),
    }
    show = {"category_name": _category_name(service, body.category)}
    return await _ask(service, signed.who, body.key, "residue", {"api": api, "show": show})


# ---- the receipt ------------------------------------------------------------------------------


def load_receipt(service: AttendantService, ref: str) -> Receipt:
    """A sale's receipt: as the ledger recorded it, or marked queued while it waits here."""
    m = service.db.stock.get(ref)
    if m is None or m.kind != "sale":
        raise NotFound(f"penjualan {ref} tidak ada / no such sale")
    v = move_view(service, m)
    lines = [
        Line("Pengepul / Buyer", v.collector_name or "-"),
        Line("Jenis / Category", v.category_name),
        Line("Berat / Weight", v.kg_text),
    ]
    if v.price_per_kg_idr is not None:
        lines.append(Line("Harga / Price", f"{rupiah(v.price_per_kg_idr)}/kg"))
    lines.append(Line("Bayar / Paid", METHOD_TEXT.get(v.payment_method or "cash", "-")))
    lines.append(Line("Petugas", m.by))
    title = "STRUK PENJUALAN / SALE"
    footer: tuple[str, ...] = ("Terima kasih / Thank you",)
    if m.state == "pending":
        title = f"ANTRI / QUEUED: {title}"
        footer = ("antri: dikirim saat internet tersambung / queued: sent when online",)
    elif m.state == "refused":
        title = f"DITOLAK / REFUSED: {title}"
        footer = (m.error or "ditolak / refused",)
    return Receipt(
        kind=KIND,
        title=title,
        reference=f"J-{v.ledger_id}" if v.ledger_id else m.key,
        at=m.asked_at,
        bank_name=bank_name(service),
        lines=tuple(lines),
        total=Line("Total", rupiah(v.revenue_idr or 0)),
        footer=footer,
        extra={"key": m.key, "state": m.state, "ledger_id": v.ledger_id},
    )


receipts.register(KIND, load_receipt, nav="stok")
