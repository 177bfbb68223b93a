"""The day page (hari ini): today's totals from the ledger, the day's close with the cash counted,
and the day sheet; the receipt kind ``hari`` (the 58 mm day sheet).

GET  /petugas/hari-ini                   the page (A4 print stylesheet: the day sheet)
GET  /petugas/api/day?date=&opening_cash_idr=   the central API's day (api/day.py): totals,
                                         stock, the close or what a close would record now
POST /petugas/api/day/close              {date, counted_cash_idr, note, opening_cash_idr?}
GET  /petugas/struk/hari/{date}          the day sheet on 58 mm (gateway.receipts)

**Online only.** The day's figures and its close are the ledger's: the page asks the central API
with the signed-in attendant's token, and a close is never queued (its expected cash is what
the ledger knows at that moment). While the internet is down the page shows the last copy of a
day it was given, marked with its time, and closing answers 503 saying why. The 58 mm sheet
prints that copy (the page refreshes it first).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway import receipts
from gateway.central import RateLimited, Refused, Unreachable
from gateway.http.attendant.auth import csrf_checked, signed_in
from gateway.http.attendant.auth import service as attendant_service
from gateway.http.attendant.pages import bank_name, render
from gateway.http.attendant.service import AttendantService, Who
from gateway.http.routing import Routes, params_of, parse_input, query_param
from gateway.receipts import Line, Receipt
from wastebank.errors import NotFound
from wastebank.formats import kg, rupiah, tanggal, tanggal_waktu

routes = Routes(prefix="/petugas")

KIND: Final = "hari"
MAX_IDR: Final = 10**12
OFFLINE: Final = (
    "Tutup hari perlu internet (angka dari buku besar pusat); coba lagi saat tersambung / "
    "Closing the day needs the internet (the figures are the central ledger's)"
)
RELOGIN: Final = (
    "Anda masuk tanpa internet: keluar lalu masuk lagi saat internet tersambung / You logged in "
    "offline: log out and in again while online"
)
METHOD_TEXT: Final = {"cash": "Tunai", "bank_transfer": "Transfer", "ewallet": "Dompet digital"}


class CloseIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    date: date
    counted_cash_idr: Annotated[int, msgspec.Meta(ge=0, le=MAX_IDR)]
    note: Annotated[str, msgspec.Meta(max_length=500)] = ""
    opening_cash_idr: Annotated[int, msgspec.Meta(ge=0, le=MAX_IDR)] | None = None


class DayView(msgspec.Struct, kw_only=True):
    online: bool
    fetched_at: datetime
    fetched_text: str
    message: str | None = None
    sheet_url: str
    day: dict[str, Any]
    """The central API's day (api/day_schemas.py DayOut)."""


def _today(service: AttendantService) -> date:
    return datetime.now(service.tz).date()


async def _central(
    service: AttendantService, who: Who, method: str, path: str, body: Any = None, **params: Any
) -> Any:
    """The central API with the attendant's token; 503 (what to do) when it cannot be asked."""
    central = service.api()
    token = service.tokens.get(who.username)
    if central is None or token is None:
        raise HTTPException(503, OFFLINE if central is None else RELOGIN)
    bank = service.gw.settings.bank_code
    try:
        if method == "GET":
            clean = {k: v for k, v in params.items() if v is not None}
            answer = await central.bank_get(bank, path, token, clean or None)
        else:
            answer = await central.bank_post(bank, path, body, token)
    except RateLimited as exc:
        raise HTTPException(429, exc.detail) from None
    except Unreachable as exc:
        service._unreachable(exc)
        raise HTTPException(503, OFFLINE) from None
    except Refused as exc:
        service._online(True)
        if exc.status_code == 401:
            service.tokens.pop(who.username, None)
            raise HTTPException(503, RELOGIN) from None
        raise HTTPException(exc.status_code, exc.detail) from None
    service._online(True)
    return answer


def _view(service: AttendantService, day: dict[str, Any], at: datetime, online: bool) -> DayView:
    return DayView(
        online=online,
        fetched_at=at,
        fetched_text=tanggal_waktu(at, service.tz),
        message=None if online else OFFLINE,
        sheet_url=f"/petugas/struk/{KIND}/{day.get('local_date')}",
        day=day,
    )


@routes.get("/hari-ini")
async def day_page(request: Request) -> HTMLResponse:
    service = attendant_service(request)
    today = _today(service).isoformat()
    return render(service, request, signed_in(request), "day.html", today=today)


def _query(request: Request) -> tuple[date | None, int | None]:
    """``?date=`` and ``?opening_cash_idr=``, both optional; when both are bad, both are
    refused in one answer (as every field of a body is)."""
    on, opening_cash_idr = params_of(
        request,
        lambda r: query_param(r, "date", date | None, default=None),
        lambda r: query_param(r, "opening_cash_idr", int | None, default=None, ge=0, le=MAX_IDR),
    )
    return on, opening_cash_idr


@routes.get("/api/day")
async def day(request: Request) -> DayView:
    signed, service = signed_in(request), attendant_service(request)
    on, opening_cash_idr = _query(request)
    when = on or _today(service)
    store = service.db.stock
    try:
        answer = await _central(
            service, signed.who, "GET", f"days/{when}", opening_cash_idr=opening_cash_idr
        )
    except HTTPException as exc:
        kept = store.copy(f"day:{when}")
        if exc.status_code != 503 or kept is None:
            raise
        return _view(service, kept[0], kept[1], online=False)
    now = datetime.now(UTC)
    store.keep(f"day:{when}", answer, now)
    return _view(service, answer, now, online=True)


@routes.post("/api/day/close", status_code=201)
async def close(request: Request) -> DayView:
    signed, _, body = await parse_input(request, CloseIn, csrf_checked)
    service = attendant_service(request)
    sent: dict[str, Any] = {"counted_cash_idr": body.counted_cash_idr, "note": body.note}
    if body.opening_cash_idr is not None:
        sent["opening_cash_idr"] = body.opening_cash_idr
    await _central(service, signed.who, "POST", f"days/{body.date}/close", sent)
    answer = await _central(service, signed.who, "GET", f"days/{body.date}")
    now = datetime.now(UTC)
    service.db.stock.keep(f"day:{body.date}", answer, now)
    return _view(service, answer, now, online=True)


# ---- the 58 mm day sheet ----------------------------------------------------------------------


def _total_lines(d: dict[str, Any]) -> list[Line]:
    out = [Line("SETORAN / DEPOSITS")]
    for r in d.get("deposits", []):
        out.append(Line(f"{r['category_name']} {kg(r['grams'])}", rupiah(r["amount_idr"])))
    t = d["deposits_total"]
    out.append(Line(f"Jumlah {t['count']}x {kg(t['grams'])}", rupiah(t["amount_idr"])))
    if d["voided"]["count"]:
        v = d["voided"]
        out.append(Line(f"Dibatalkan/voided {v['count']}x", rupiah(v["amount_idr"])))
    out.append(Line("PENARIKAN DIBAYAR / PAID OUT"))
    for m in d.get("withdrawals_paid", []):
        out.append(Line(f"{METHOD_TEXT.get(m['method'], m['method'])} {m['count']}x",
                        rupiah(m["amount_idr"])))  # fmt: skip
    out.append(Line("PENJUALAN / SALES"))
    for r in d.get("sales", []):
        out.append(Line(f"{r['category_name']} {kg(r['grams'])}", rupiah(r["amount_idr"])))
    for label, key in (("KE INDUK / TO INDUK", "transfers_out"), ("RESIDU / RESIDUE", "residue")):
        rows = d.get(key, [])
        if rows:
            out.append(Line(label))
            out.extend(Line(r["category_name"], kg(r["grams"])) for r in rows)
    return out


def _cash_lines(d: dict[str, Any]) -> list[Line]:
    cash = d.get("cash")
    if not cash:
        return [Line(d.get("closable_why") or "")]
    out = [
        Line("KAS TUNAI / CASH"),
        Line("Saldo awal / Opening", rupiah(cash["opening_idr"])),
        Line("Masuk / In", rupiah(cash["in_idr"])),
        Line("Keluar / Out", rupiah(cash["out_idr"])),
        Line("Seharusnya / Expected", rupiah(cash["expected_idr"])),
    ]
    close = d.get("close")
    if close:
        out += [
            Line("Dihitung / Counted", rupiah(close["counted_cash_idr"])),
            Line("Selisih / Difference", rupiah(close["difference_idr"])),
            Line("Ditutup oleh / By", close["closed_by"]),
        ]
        if close.get("note"):
            out.append(Line(f"Catatan / Note: {close['note']}"))
    return out


def load_receipt(service: AttendantService, ref: str) -> Receipt:
    """The day sheet of ``ref`` (a local date) from the last copy the page was given."""
    try:
        when = date.fromisoformat(ref)
    except ValueError:
        raise NotFound(f"hari {ref!r} tidak dikenal / no such day") from None
    kept = service.db.stock.copy(f"day:{when}")
    if kept is None:
        raise NotFound(
            f"buka halaman Hari ini untuk {tanggal(when)} dulu / open the day page for "
            f"{tanggal(when, 'en')} first"
        )
    d, at = kept
    closed = d.get("close") is not None
    return Receipt(
        kind=KIND,
        title=f"LAPORAN HARIAN / DAY SHEET {tanggal(when)}",
        reference=f"{d.get('bank_code')} {when}",
        at=at,
        bank_name=bank_name(service),
        lines=tuple(_total_lines(d) + _cash_lines(d)),
        total=None,
        footer=("HARI DITUTUP / DAY CLOSED" if closed else "BELUM DITUTUP / NOT CLOSED YET",),
        extra={"date": str(when), "closed": closed},
    )


receipts.register(KIND, load_receipt, nav="hari")
