"""Members at the bank (nasabah di bank): register a walk-in, bind a card tapped on the reader,
issue or reset a PIN on a printed slip, switch a member's SMS receipts on or off, and refresh
the member directory and prices now.

GET  /petugas/nasabah                        the page
GET  /petugas/api/members/next-no            the number the central API proposes
POST /petugas/api/members                    {member_no, name, phone?, rt?, rw?, nik?, kelurahan?,
                                             sms_opt_in?}: SMS switched on right after creating
GET  /petugas/api/members/{no}/sms           the member's phone and whether they get SMS
PUT  /petugas/api/members/{no}/sms           {sms_opt_in}: SMS receipts on or off
POST /petugas/api/members/{no}/cards         {uid}: bind a card
POST /petugas/api/members/{no}/pin           {reset}: a PIN issued (or reset), its slip's ref
POST /petugas/api/sync                       members and prices from the central API now
GET  /petugas/struk/pin/{ref}                the PIN slip (receipt kind ``pin``, gateway.receipts)

Registration, cards, PINs and the SMS opt-in are the central API's (api/members.py,
api/member_desk.py), asked with the signed-in attendant's own token: they need the internet,
and an attendant who logged in offline logs in again once it is back (503 with a message saying
so). What registration and cards change is in the gateway's directory at once; the opt-in is
asked of the central API each time (the directory does not keep it). A PIN is never written
to the gateway's disk: its slip is kept in memory for :data:`SLIP_TTL_S` (to show and print
it), for the attendant who issued it alone (another attendant's session gets 404), then gone; a
lost slip is a reset. The answers that carry the PIN are ``Cache-Control: no-store``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Final, TypeVar

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway import receipts
from gateway.attendant_store import MemberEntry
from gateway.central import Central, RateLimited, Refused, Unreachable
from gateway.http.attendant import auth
from gateway.http.attendant.auth import COOKIE
from gateway.http.attendant.pages import bank_name, render
from gateway.http.attendant.service import AttendantService, SignedIn
from gateway.http.attendant.views import MemberView, member_view
from gateway.http.routing import Routes, json_response, parse_input, path_param
from gateway.receipts import Line, Receipt
from wastebank.errors import NotFound
from wastebank.formats import tanggal_waktu

log = logging.getLogger("wastebank.gateway")

routes = Routes(prefix="/petugas")
T = TypeVar("T")

PIN_KIND: Final = "pin"
SLIP_TTL_S: Final = 600.0
"""A PIN slip can be shown and printed for ten minutes after its PIN was issued."""
OFFLINE: Final = (
    "Server pusat tidak terjangkau: pendaftaran, kartu dan PIN perlu internet; coba lagi nanti "
    "/ The central API cannot be reached: registration, cards and PINs need the internet"
)
RELOGIN: Final = (
    "Anda masuk tanpa internet: keluar lalu masuk lagi saat internet tersambung / You logged in "
    "offline: log out and in again while online"
)
CARD_PATTERN: Final = r"^[0-9A-Fa-f]{4,20}$"
MEMBER_NO: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
"""A member number (the central API's rule): checked here before it goes into the central
API's URL, so a path param cannot name another route there (``..``, ``?``, ``#``)."""
SMS_NO_PHONE: Final = (
    "SMS perlu nomor HP: isi nomor HP nasabah / SMS needs a phone number: fill in the member's "
    "phone"
)


class RegisterIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    member_no: Annotated[str, msgspec.Meta(pattern=MEMBER_NO)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"\S")]
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9]{8,15}$")] | None = None
    rt: Annotated[int, msgspec.Meta(ge=1, le=999)] | None = None
    rw: Annotated[int, msgspec.Meta(ge=1, le=999)] | None = None
    nik: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{16}$")] | None = None
    kelurahan: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    sms_opt_in: bool = False
    """Switched on (``PATCH /api/members/{no}``) once the member is made: the central API's
    ``POST`` takes no opt-in, and its rule for a mobile number is the PATCH's."""


class RegisteredView(MemberView, kw_only=True):
    sms_opt_in: bool | None = None
    """Whether the member gets SMS receipts (None: not asked for)."""
    sms_error: str | None = None
    """Why SMS could not be switched on (the member is registered all the same)."""


class SmsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sms_opt_in: bool


class SmsView(msgspec.Struct, kw_only=True):
    member_no: str
    name: str
    phone: str | None
    sms_opt_in: bool


class CardIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    uid: Annotated[str, msgspec.Meta(pattern=CARD_PATTERN)]


class PinIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reset: bool = False


class PinView(msgspec.Struct, kw_only=True):
    member_no: str
    name: str
    username: str
    pin: str
    created: bool
    login_url: str
    slip_url: str
    slip_ref: str
    issued_text: str


class SyncView(msgspec.Struct, kw_only=True):
    online: bool
    members: int
    members_synced_text: str | None
    prices_synced_text: str | None


# ---- the page ---------------------------------------------------------------------------------


@routes.get("/nasabah")
async def members_page(request: Request) -> HTMLResponse:
    service = auth.service(request)
    signed = service.signed_in(request.cookies.get(COOKIE))
    return render(service, request, signed, "members.html")


# ---- the central API, with the attendant's token ---------------------------------------------


async def _ask(
    service: AttendantService, signed: SignedIn, call: Callable[[Central, str], Awaitable[T]]
) -> T:
    """``call`` on the central API with the attendant's token; its refusals as they were given
    (Indonesian first), an outage or an offline login as a 503 that says what to do."""
    central = service.api()
    token = service.tokens.get(signed.who.username)
    if central is None or token is None:
        raise HTTPException(503, OFFLINE if central is None else RELOGIN)
    try:
        result = await call(central, token)
    except RateLimited as exc:
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else None
        raise HTTPException(429, exc.detail, headers=headers) from None
    except Unreachable as exc:
        service._unreachable(exc)
        raise HTTPException(503, OFFLINE) from None
    except Refused as exc:
        service._online(True)
        if exc.status_code == 401:  # the central token expired or was revoked
            service.tokens.pop(signed.who.username, None)
            raise HTTPException(503, RELOGIN) from None
        raise HTTPException(exc.status_code, exc.detail) from None
    service._online(True)
    return result


def _entry(body: Any) -> MemberEntry:
    """A member as the central API answered it (``MemberOut``), for the directory."""
    return MemberEntry(
        member_no=str(body["member_no"]),
        name=str(body.get("name") or ""),
        kind=str(body.get("kind") or ""),
        cards=tuple(str(c) for c in body.get("cards") or ()),
    )


def _member_no(request: Request) -> str:
    """The path's member number, refused unless it is one (:data:`MEMBER_NO`)."""
    member_no: str = path_param(request, "member_no", pattern=MEMBER_NO)
    return member_no


@routes.get("/api/members/next-no")
async def next_no(request: Request) -> dict[str, str]:
    signed, service = auth.signed_in(request), auth.service(request)
    bank = service.gw.settings.bank_code
    return {"member_no": await _ask(service, signed, lambda c, t: c.next_member_no(bank, t))}


@routes.post("/api/members", status_code=201)
async def register(request: Request) -> RegisteredView:
    signed, _, body = await parse_input(request, RegisterIn, auth.csrf_checked)
    service = auth.service(request)
    bank = service.gw.settings.bank_code
    if body.sms_opt_in and not body.phone:  # refused before a member is made without it
        raise HTTPException(422, SMS_NO_PHONE)
    sent = msgspec.structs.asdict(body)
    fields = {k: v for k, v in sent.items() if v is not None and k != "sms_opt_in"}
    made = await _ask(service, signed, lambda c, t: c.register_member(bank, fields, t))
    entry = _entry(made)
    service.db.directory.put_member(bank, entry)
    log.info(
        "nasabah didaftarkan / member registered: %s by %s", entry.member_no, signed.who.username
    )
    service.gw.live.notify()
    view = RegisteredView(**msgspec.structs.asdict(member_view(entry)))
    if body.sms_opt_in:
        try:
            view.sms_opt_in = (await _set_sms(service, signed, entry.member_no, True)).sms_opt_in
        except HTTPException as exc:  # e.g. 422: not a mobile number; the member stays made
            view.sms_opt_in, view.sms_error = False, str(exc.detail)
    return view


# ---- SMS receipts (wastebank/sms/; docs/attendant.md, "SMS") ------------------------------------


def _sms_view(body: Any) -> SmsView:
    return SmsView(
        member_no=str(body["member_no"]),
        name=str(body.get("name") or ""),
        phone=None if body.get("phone") is None else str(body["phone"]),
        sms_opt_in=bool(body.get("sms_opt_in")),
    )


async def _set_sms(
    service: AttendantService, signed: SignedIn, member_no: str, on: bool
) -> SmsView:
    fields = {"sms_opt_in": on}
    changed = _sms_view(
        await _ask(service, signed, lambda c, t: c.update_member(member_no, fields, t))
    )
    what = "aktif / on" if changed.sms_opt_in else "mati / off"
    log.info("SMS %s: %s by %s", what, member_no, signed.who.username)
    return changed


@routes.get("/api/members/{member_no}/sms")
async def sms_state(request: Request) -> SmsView:
    signed = auth.signed_in(request)
    member_no = _member_no(request)
    service = auth.service(request)
    return _sms_view(await _ask(service, signed, lambda c, t: c.member(member_no, t)))


@routes.put("/api/members/{member_no}/sms")
async def sms_switch(request: Request) -> SmsView:
    """SMS receipts on or off (each SMS costs the bank); on needs a mobile number (422)."""
    signed, (member_no,), body = await parse_input(request, SmsIn, auth.csrf_checked, _member_no)
    return await _set_sms(auth.service(request), signed, member_no, body.sms_opt_in)


@routes.post("/api/members/{member_no}/cards")
async def bind_card(request: Request) -> MemberView:
    signed, (member_no,), body = await parse_input(request, CardIn, auth.csrf_checked, _member_no)
    service = auth.service(request)
    uid = body.uid.upper()
    holder = service.db.directory.by_card(uid)
    if holder is not None and holder.member_no != member_no:
        raise HTTPException(
            409,
            f"kartu {uid} sudah milik {holder.name} ({holder.member_no}) / the card is "
            "another member's",
        )
    made = await _ask(service, signed, lambda c, t: c.add_card(member_no, uid, t))
    entry = _entry(made)
    service.db.directory.put_member(service.gw.settings.bank_code, entry)
    log.info("kartu diikat / card bound: %s to %s by %s", uid, member_no, signed.who.username)
    service.gw.live.notify()  # the reader's last tap now names its holder
    return member_view(entry)


@routes.post("/api/members/{member_no}/pin")
async def issue_pin(request: Request) -> Response:
    signed, (member_no,), body = await parse_input(request, PinIn, auth.csrf_checked, _member_no)
    service = auth.service(request)
    issued = await _ask(service, signed, lambda c, t: c.issue_pin(member_no, body.reset, t))
    at = datetime.fromisoformat(str(issued["issued_at"]))
    login_url = f"{(service.api_url or '').rstrip('/')}/masuk"
    ref = secrets.token_urlsafe(12)
    slip = Receipt(
        kind=PIN_KIND,
        title="SLIP PIN NASABAH / MEMBER PIN",
        reference=str(issued["member_no"]),
        at=at,
        bank_name=bank_name(service),
        lines=(
            Line("No. nasabah", str(issued["member_no"])),
            Line("Nama", str(issued["name"])),
            Line("Nama pengguna", str(issued["username"])),
            Line("PIN", str(issued["pin"])),
            Line("Masuk di / Log in at:"),
            Line(login_url),
        ),
        footer=(
            "Rahasiakan PIN ini / Keep this PIN secret",
            "PIN hilang? Minta petugas menyetel ulang / Lost it? Ask an attendant to reset it",
        ),
        reader=signed.who.username,  # only its issuer opens or prints it
    )
    _keep(ref, slip)
    what = "direset / reset" if body.reset else "diterbitkan / issued"
    log.info("PIN %s: %s by %s", what, member_no, signed.who.username)  # never the PIN
    view = PinView(
        member_no=str(issued["member_no"]),
        name=str(issued["name"]),
        username=str(issued["username"]),
        pin=str(issued["pin"]),
        created=bool(issued["created"]),
        login_url=login_url,
        slip_url=f"/petugas/struk/{PIN_KIND}/{ref}",
        slip_ref=ref,
        issued_text=tanggal_waktu(at, service.tz),
    )
    answer = json_response(view)
    answer.headers["Cache-Control"] = "no-store"  # the PIN: shown once, kept by no cache
    return answer


@routes.post("/api/sync")
async def refresh(request: Request) -> SyncView:
    """Members and prices from the central API now (Segarkan / Refresh)."""
    signed = await auth.csrf_checked(request)
    service = auth.service(request)
    online = await service.refresh(service.tokens.get(signed.who.username))
    return sync_view(service, online)


def sync_view(service: AttendantService, online: bool) -> SyncView:
    d = service.db.directory
    members_at, prices_at = d.synced_at("members"), d.synced_at("prices")
    return SyncView(
        online=online,
        members=d.count(),
        members_synced_text=None if members_at is None else tanggal_waktu(members_at, service.tz),
        prices_synced_text=None if prices_at is None else tanggal_waktu(prices_at, service.tz),
    )


# ---- the PIN slip: a receipt kept in memory only ---------------------------------------------

_slips: dict[str, tuple[float, Receipt]] = {}


def _keep(ref: str, slip: Receipt) -> None:
    now = time.monotonic()
    for old in [r for r, (at, _) in _slips.items() if now - at > SLIP_TTL_S]:
        del _slips[old]
    _slips[ref] = (now, slip)


def load_slip(_service: AttendantService, ref: str) -> Receipt:
    kept = _slips.get(ref)
    if kept is None or time.monotonic() - kept[0] > SLIP_TTL_S:
        raise NotFound(
            "slip PIN tidak tersedia lagi (disimpan 10 menit); setel ulang PIN untuk slip baru "
            "/ the PIN slip is gone (kept 10 minutes): reset the PIN for a new one"
        )
    return kept[1]


receipts.register(PIN_KIND, load_slip, nav="nasabah")
