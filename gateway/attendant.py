"""The attendant (petugas) page on the gateway's local endpoint, and what keeps it working offline.

The page, the live weight and recording a deposit are all on the bank's LAN: a deposit goes into
the gateway's outbox (see :mod:`gateway.main`) whether or not the bank's internet is up. The
central API is used when it can be reached, for:

* logins: forwarded to ``POST {api_url}/api/token`` and ``GET /api/me``; on success an argon2
  hash of the password, the role and the banks are cached (``login_cache_days``), so the same
  attendant can log in while the internet is down;
* the member directory and price list, fetched with the attendant's token and kept in SQLite;
* voids: ``POST /api/deposits/{event_id}/void`` with the token of the attendant who asked; while
  offline (or before the deposit has reached the ledger) they wait in the journal and are retried.

Tokens are kept in memory only: after a restart a queued void waits until its attendant logs in
again while online.

**Sessions.** A login's session is a signed, HttpOnly, SameSite=Strict cookie (``wb_petugas``, a
JWT, HS256, path ``/``: every route of the local endpoint) whose key is kept in the gateway's
SQLite file, and a row in that file: the cookie is good only while its row is there. A logout
deletes the row; so does the sync when the central API no longer lets the account log in here
(disabled, removed, moved to another bank: see :meth:`AttendantService.sync_logins`), which also
drops the account's cached login. Every write needs the session's CSRF token (an HMAC of the
session id) in the ``X-CSRF-Token`` header (the page's script) or the form's ``csrf_token``
field (the logout button). The login form carries a token bound to a nonce cookie of its own
(``wb_petugas_masuk``), so no other site can log a tablet in to an account of its choosing.

Every route of the local endpoint needs the session (:class:`SessionGate`, deny by default)
but those listed in :data:`PUBLIC`: the minimal ``/health``, the page itself (the login form when
not signed in), its script, and the logins and logout.

  GET  /petugas                          the page (the login form when not signed in)
  POST /petugas/masuk, /petugas/keluar   log in (form), log out
  POST /petugas/api/session              log in (JSON: the CLI, `wastebank attend`)
  DELETE /petugas/api/session            log out (JSON)
  GET  /petugas/attendant.js             the page's script
  GET  /petugas/api/state                who, the scales, the price list, the directory's age
  GET  /petugas/api/members?q=           search the directory (name, number or card UID)
  GET  /petugas/api/cards/{uid}          the member holding a card
  POST /petugas/api/scales/{id}/record   {member_no, category_code}: the next settled load
  POST /petugas/api/scales/{id}/cancel
  GET  /petugas/api/scales/{id}/live     Server-Sent Events: weight, stable, armed, last deposit
  GET  /petugas/api/deposits             today's deposits at this gateway
  POST /petugas/api/deposits/{id}/void   {reason}
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.attendant_store import JournalEntry, MemberEntry
from gateway.central import Central, RateLimited, Refused, Unreachable
from gateway.kiosk import AttendantSession
from gateway.main import ArmContext, Gateway, ScaleReader
from wastebank.messages import CODE_PATTERN
from wastebank.money_rules import amount_for

if TYPE_CHECKING:
    from argon2 import PasswordHasher
    from fastapi.templating import Jinja2Templates

log = logging.getLogger("wastebank.gateway")

HERE = Path(__file__).parent
SCRIPT = HERE / "static" / "attendant.js"
COOKIE: Final = "wb_petugas"
LEGACY_COOKIE_PATH: Final = "/petugas"
"""Where releases before 0.3 scoped the cookie: cleared at login and logout."""
LOGIN_COOKIE: Final = "wb_petugas_masuk"
"""The login form's nonce (double submit: the form's token is an HMAC of it)."""
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
NOT_SIGNED_IN: Final = "belum masuk / not signed in"
BAD_CSRF: Final = "token CSRF tidak sah; muat ulang halaman / invalid CSRF token: reload the page"
PUBLIC: Final = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/petugas"),
        ("POST", "/petugas/masuk"),
        ("POST", "/petugas/keluar"),
        ("GET", "/petugas/attendant.js"),
        ("POST", "/petugas/api/session"),
    }
)
"""The only routes of the local endpoint open without a session (HEAD as GET)."""
ALLOWED_ROLES: Final = ("attendant", "admin")
LOGIN_WINDOW_S: Final = 900.0
VOID_RETRY_S: Final = 5.0
"""A queued void is tried this soon; a deposit not yet in the ledger (404) doubles it, up to
``sync_interval_s``."""
CARD_FRESH_S: Final = 60.0
"""A card tapped on the reader is offered for this long."""
LIVE_MIN_GAP_S: Final = 0.1
"""At most ten live updates a second per page."""
LIVE_REFRESH_S: Final = 10.0
"""A live update at least this often (outbox depth and send status change without a wake)."""

MONTHS = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember"
).split()
DAYS = "Senin Selasa Rabu Kamis Jumat Sabtu Minggu".split()


# ---- Indonesian formats -----------------------------------------------------------------------


def rupiah(amount: int) -> str:
    """Rp12.345 (dot as thousands separator)."""
    sign = "-" if amount < 0 else ""
    return f"{sign}Rp{abs(amount):,}".replace(",", ".")


def kg(grams: int) -> str:
    """1,25 kg (comma as decimal separator)."""
    return f"{grams / 1000:.2f}".replace(".", ",") + " kg"


def tanggal(at: datetime, tz: ZoneInfo) -> str:
    """Senin, 30 November 2026 17.45 WIT."""
    local = at.astimezone(tz)
    return (
        f"{DAYS[local.weekday()]}, {local.day} {MONTHS[local.month - 1]} {local.year} "
        f"{local:%H.%M} {local.tzname() or ''}"
    ).rstrip()


def jam(at: datetime, tz: ZoneInfo) -> str:
    """17.45."""
    return f"{at.astimezone(tz):%H.%M}"


# ---- views ------------------------------------------------------------------------------------


SEND_TEXT = {
    "pending": "menunggu / pending",
    "sent": "terkirim / sent",
    "dropped": "hilang dari outbox / dropped",
}
VOID_TEXT = {
    "pending": "batal menunggu / void pending",
    "done": "dibatalkan / voided",
    "refused": "batal ditolak / void refused",
}


class DepositView(BaseModel):
    event_id: str
    scale_id: str
    member_no: str | None
    member_name: str | None
    card_uid: str | None
    category_code: str
    category_name: str
    net_g: int
    weight_text: str
    price_per_kg_idr: int | None
    price_text: str | None
    amount_idr: int | None
    amount_text: str | None
    recorded_at: datetime
    recorded_text: str
    time_text: str
    attendant: str | None
    status: str
    status_text: str
    void_state: str | None
    void_text: str | None
    void_reason: str | None
    void_error: str | None


class CardView(BaseModel):
    uid: str
    member_no: str | None = None
    member_name: str | None = None


class LiveView(BaseModel):
    scale_id: str
    connected: bool
    grams: int | None
    weight_text: str
    stable: bool | None
    armed_member_no: str | None
    armed_category_code: str | None
    waiting_for_zero: bool
    card: CardView | None
    last_deposit: DepositView | None
    broker_connected: bool
    outbox_depth: int
    central_online: bool | None
    pending_voids: int


class MemberView(BaseModel):
    member_no: str
    name: str
    kind: str
    cards: list[str]


class PriceView(BaseModel):
    category_code: str
    category_name: str
    unit: str
    price_idr: int
    price_text: str


class ScaleChoice(BaseModel):
    scale_id: str
    connected: bool


class WhoView(BaseModel):
    username: str
    name: str
    role: str
    offline: bool


class StateView(BaseModel):
    who: WhoView
    gateway_id: str
    bank_code: str
    timezone: str
    today_text: str
    scales: list[ScaleChoice]
    prices: list[PriceView]
    members: int
    members_synced_text: str | None
    prices_synced_text: str | None
    central_configured: bool
    central_online: bool | None


class RecordIn(BaseModel):
    member_no: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    category_code: str = Field(pattern=CODE_PATTERN)


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


# ---- the service ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Who:
    username: str
    name: str
    role: str
    offline: bool


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, its id (a row in the gateway's file) and its CSRF token."""

    who: Who
    sid: str
    csrf: str


class LoginRefused(Exception):
    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str] | None:
        return None if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class AttendantService:
    """Logins (online, or from the cache), directory and price sync, and the void queue."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.settings = gw.settings.attendant
        self.tz = ZoneInfo(self.settings.timezone)
        self.db = gw.attendant_db
        api = gw.settings.api_url
        self.api_url = str(api) if api else None
        # httpx, argon2 and pyjwt (with cryptography) cost ~13 MB: loaded when the page is
        # first used, not at the start of a gateway whose bank never opens it.
        self.central: Central | None = None
        self._hasher: PasswordHasher | None = None
        self.central_online: bool | None = None
        self.key = self.db.secret("attendant-session")
        self.tokens: dict[str, str] = {}  # username -> central API bearer token (memory only)
        self._failures: dict[str, list[float]] = {}
        self._wake = asyncio.Event()
        self._members_at = -float("inf")
        self.streams = 0
        """Live streams open now (pages showing a scale)."""

    async def aclose(self) -> None:
        if self.central is not None:
            await self.central.aclose()

    def api(self) -> Central | None:
        """The central API's client (made on first use); None without ``api_url``."""
        if self.central is None and self.api_url is not None:
            self.central = Central(self.api_url, timeout_s=self.settings.api_timeout_s)
        return self.central

    @property
    def hasher(self) -> "PasswordHasher":
        if self._hasher is None:
            from argon2 import PasswordHasher

            self._hasher = PasswordHasher(
                time_cost=self.settings.argon2_time_cost,
                memory_cost=self.settings.argon2_memory_kib,
                parallelism=self.settings.argon2_parallelism,
            )
        return self._hasher

    def wake(self) -> None:
        self._wake.set()

    def _unreachable(self, exc: Unreachable) -> None:
        """A call failed for now: an outage, unless the API answered 429 (it is there)."""
        self._online(isinstance(exc, RateLimited), str(exc))

    def _online(self, online: bool, detail: str = "") -> None:
        if online == self.central_online:
            return
        if online:
            log.info("API pusat terhubung / central API reachable")
        else:
            log.warning("API pusat tidak terjangkau / central API unreachable: %s", detail)
        self.central_online = online
        self.gw.live.notify()

    # -- logins --

    def _allowed(self, role: str, bank_codes: tuple[str, ...]) -> bool:
        if role == "admin":
            return True
        return role == "attendant" and self.gw.settings.bank_code in bank_codes

    def _limited(self, username: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(username, []) if now - t < LOGIN_WINDOW_S]
        self._failures[username] = recent
        return len(recent) >= self.settings.max_login_failures

    def _failed(self, username: str) -> None:
        self._failures.setdefault(username, []).append(time.monotonic())

    async def _verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        try:
            return await asyncio.to_thread(self.hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def login(self, username: str, password: str) -> Who:
        """Check the credentials with the central API, or with the cache when it cannot be
        reached (no network, a timeout, a 5xx); :class:`LoginRefused` (401, 403, 429)
        otherwise. A 429 from the central API is its answer, not an outage: refused, never
        let in from the cache."""
        wrong = "nama pengguna atau kata sandi salah / wrong username or password"
        if self._limited(username):
            raise LoginRefused(429, "terlalu banyak percobaan; tunggu 15 menit / too many tries")
        now = datetime.now(UTC)
        central = self.api()
        if central is not None:
            try:
                token = await central.token(username, password)
                me = await central.me(token)
            except RateLimited as exc:
                self._online(True)
                raise LoginRefused(
                    429,
                    "API pusat: terlalu banyak percobaan, coba lagi nanti / the central API "
                    f"refuses more tries for now: {exc.detail}",
                    exc.retry_after_s,
                ) from None
            except Refused:
                self._online(True)
                self._failed(username)
                cached = self.db.logins.get(username, now)
                if cached is not None and await self._verify(cached.password_hash, password):
                    # the password that worked is refused now: changed or disabled centrally
                    self.end_login(cached.username, "ditolak pusat / refused centrally")
                raise LoginRefused(401, wrong) from None
            except Unreachable as exc:
                self._online(False, str(exc))
            else:
                self._online(True)
                if not self._allowed(me.role, me.bank_codes):
                    self.end_login(me.username, "bukan petugas bank ini / not of this bank")
                    bank = self.gw.settings.bank_code
                    raise LoginRefused(403, f"hanya petugas {bank} / only attendants of this bank")
                password_hash = await asyncio.to_thread(self.hasher.hash, password)
                self.db.logins.put(
                    me.username,
                    password_hash,
                    role=me.role,
                    name=me.name,
                    bank_codes=me.bank_codes,
                    now=now,
                    ttl=timedelta(days=self.settings.login_cache_days),
                )
                self.tokens[me.username] = token
                await self.sync_members(token)
                self.wake()
                return Who(me.username, me.name, me.role, offline=False)
        cached = self.db.logins.get(username, now)
        if cached is None:
            self._failed(username)
            raise LoginRefused(
                401,
                f"{wrong}; tanpa internet hanya petugas yang pernah masuk dalam "
                f"{self.settings.login_cache_days:g} hari terakhir / offline, only attendants who "
                "logged in online recently",
            )
        if not await self._verify(cached.password_hash, password):
            self._failed(username)
            raise LoginRefused(401, wrong)
        if not self._allowed(cached.role, cached.bank_codes):
            raise LoginRefused(403, "bukan petugas bank ini / not an attendant of this bank")
        return Who(cached.username, cached.name, cached.role, offline=True)

    def end_login(self, username: str, why: str) -> None:
        """The account may no longer log in here: its cached login, its sessions (cookies) and
        its central token go, and open live streams end."""
        cached = self.db.logins.forget(username)
        ended = self.db.sessions.end_user(username)
        token = self.tokens.pop(username, None)
        if cached or ended or token:
            log.warning(
                "login petugas diakhiri / attendant login ended: %s (%s): cache %s, %d sesi / "
                "sessions",
                username,
                why,
                "dihapus / dropped" if cached else "-",
                ended,
            )
            self.gw.live.notify()  # open streams check their session again

    def session_cookie(self, who: Who) -> str:
        """Start a session of ``who``: the signed cookie that names it."""
        now = int(time.time())
        ttl = timedelta(hours=self.settings.session_hours)
        sid = self.db.sessions.start(who.username, datetime.now(UTC), ttl)
        claims = {
            "sid": sid,
            "sub": who.username,
            "name": who.name,
            "role": who.role,
            "off": who.offline,
            "gw": self.gw.settings.gateway_id,
            "typ": "petugas",
            "iat": now,
            "exp": now + int(ttl.total_seconds()),
        }
        import jwt

        return jwt.encode(claims, self.key, algorithm="HS256")

    def signed_in(self, cookie: str | None) -> SignedIn | None:
        """The live session the cookie names: signed by this gateway, not expired, and its row
        still there (not logged out, not ended by the sync)."""
        if not cookie:
            return None
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                cookie, self.key, algorithms=["HS256"], options={"require": ["sid", "sub", "exp"]}
            )
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != "petugas" or claims.get("gw") != self.gw.settings.gateway_id:
            return None
        sid, username = str(claims["sid"]), str(claims["sub"])
        if not self.db.sessions.alive(sid, username, datetime.now(UTC)):
            return None
        who = Who(username, str(claims["name"]), str(claims["role"]), bool(claims["off"]))
        return SignedIn(who, sid, self.csrf(sid))

    def who(self, cookie: str | None) -> Who | None:
        signed = self.signed_in(cookie)
        return None if signed is None else signed.who

    def end_session(self, sid: str) -> None:
        self.db.sessions.end(sid)

    def _mac(self, purpose: str, value: str) -> str:
        message = f"wastebank-petugas-{purpose}:{value}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def csrf(self, sid: str) -> str:
        """The session's CSRF token: bound to it, so one session's token is refused in
        another."""
        return self._mac("csrf", sid)

    def login_token(self, nonce: str) -> str:
        """The login form's token for the nonce in its :data:`LOGIN_COOKIE`."""
        return self._mac("login", nonce)

    def check(self, expected: str, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(expected.encode(), given.encode())

    # -- sync --

    async def sync_members(self, token: str) -> bool:
        central = self.api()
        if central is None:
            return False
        bank = self.gw.settings.bank_code
        try:
            members = await central.members(bank, token)
            prices = await central.prices(bank)
        except Unreachable as exc:
            self._unreachable(exc)
            return False
        except Refused as exc:
            self._online(True)
            if exc.status == 401:  # expired (an hour by default) or revoked: not used again
                self.tokens = {u: t for u, t in self.tokens.items() if t != token}
            log.warning("daftar nasabah ditolak / member list refused: %s", exc)
            return False
        self._online(True)
        now = datetime.now(UTC)
        self.db.directory.replace_members(bank, members, now)
        self.db.directory.replace_prices(prices, now)
        self._members_at = time.monotonic()
        log.info(
            "daftar nasabah / directory synced: %d members, %d prices", len(members), len(prices)
        )
        return True

    async def sync_prices(self) -> None:
        central = self.api()
        if central is None:
            return
        try:
            prices = await central.prices(self.gw.settings.bank_code)
        except Unreachable as exc:
            self._unreachable(exc)
            return
        except Refused as exc:
            log.warning("daftar harga ditolak / price list refused: %s", exc)
            return
        self._online(True)
        self.db.directory.replace_prices(prices, datetime.now(UTC))

    async def sync_logins(self, token: str) -> bool:
        """Ask the central API which of the accounts cached or signed in here may still log in
        at this bank; end the others' cached logins and sessions (an account disabled, removed
        or moved to another bank). With ``token``'s user refused at this bank (403), theirs
        too. False when the API could not answer now (nothing is ended then)."""
        central = self.api()
        if central is None:
            return False
        now = datetime.now(UTC)
        logins, sessions = self.db.logins.usernames(), self.db.sessions.usernames(now)
        known = sorted({*logins, *sessions, *self.tokens})
        if not known:
            return True
        bank = self.gw.settings.bank_code
        try:
            allowed = await central.allowed_logins(bank, known, token)
        except Unreachable as exc:
            self._unreachable(exc)
            return False
        except Refused as exc:
            self._online(True)
            owner = next((u for u, t in self.tokens.items() if t == token), None)
            if exc.status == 401:  # expired or revoked: not used again
                self.tokens = {u: t for u, t in self.tokens.items() if t != token}
            elif exc.status == 403 and owner is not None:  # no longer of this bank
                self.end_login(owner, "bukan petugas bank ini lagi / no longer of this bank")
            log.warning("daftar login ditolak / login list refused: %s", exc)
            return False
        self._online(True)
        for username in known:
            if username not in allowed:
                self.end_login(username, "dinonaktifkan atau dipindah / disabled or moved")
        return True

    async def send_voids(self) -> None:
        central = self.api()
        if central is None:
            return
        journal = self.db.journal
        for void in journal.due_voids(datetime.now(UTC)):
            token = self.tokens.get(void.by)
            if token is None:
                continue  # waits until that attendant logs in again while online
            now = datetime.now(UTC)
            try:
                await central.void(void.event_id, void.reason, token)
            except RateLimited as exc:
                self._online(True)
                wait = exc.retry_after_s or VOID_RETRY_S
                journal.void_retry(void.event_id, str(exc), now + timedelta(seconds=wait))
                return
            except Unreachable as exc:
                self._online(False, str(exc))
                return
            except Refused as exc:
                self._online(True)
                if exc.status == 409:  # already voided there (e.g. an earlier try's answer lost)
                    journal.void_done(void.event_id, now)
                elif exc.status == 404:  # not in the ledger yet: the ingester is behind
                    delay = min(self.settings.sync_interval_s, VOID_RETRY_S * 2**void.attempts)
                    journal.void_retry(void.event_id, exc.detail, now + timedelta(seconds=delay))
                elif exc.status == 401:
                    self.tokens.pop(void.by, None)
                else:
                    journal.void_refused(void.event_id, exc.detail, now)
                    log.warning("pembatalan ditolak / void refused: %s: %s", void.event_id, exc)
            else:
                self._online(True)
                journal.void_done(void.event_id, now)
                log.info("setoran dibatalkan / deposit voided: %s", void.event_id)
            self.gw.live.notify()

    async def run(self) -> None:
        """Sync prices, members and queued voids while online, once an attendant has logged in
        online since the start (their token is what the member list and voids need; until then
        the copy in SQLite serves); never raises."""
        while True:
            self._wake.clear()
            try:
                token = next(reversed(self.tokens.values()), None)
                if token is not None:
                    await self.sync_prices()
                    due = time.monotonic() - self._members_at >= self.settings.sync_interval_s
                    if due:
                        await self.sync_members(token)
                        await self.sync_logins(token)
                    await self.send_voids()
                now = datetime.now(UTC)
                self.db.journal.prune(now - timedelta(days=90))
                self.db.sessions.prune(now)
            except Exception:
                log.exception("sinkron petugas gagal / attendant sync failed")
            wait = self.settings.sync_interval_s
            if self.db.journal.pending_voids():
                wait = min(wait, VOID_RETRY_S)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    # -- views --

    def today(self) -> tuple[datetime, datetime]:
        day = datetime.now(self.tz).date()
        return _day_bounds(day, self.tz)

    def deposit_view(self, e: JournalEntry) -> DepositView:
        price = self.db.directory.price(e.category_code)
        member_no, member_name = e.member_no, e.member_name
        if member_no is None and e.card_uid:  # a kiosk deposit: the card's holder, if known
            holder = self.db.directory.by_card(e.card_uid)
            if holder is not None:
                member_no, member_name = holder.member_no, holder.name
        # A kiosk deposit carries no price: the estimate is the cached list's (the ledger prices
        # it at the price in force at its time, which is almost always the same).
        per_kg = e.price_per_kg_idr
        if per_kg is None and price is not None and price.unit == "kg":
            per_kg = price.price_idr
        amount = e.amount_idr if e.price_per_kg_idr is not None else None
        if amount is None and per_kg is not None:
            amount = amount_for(e.net_g, per_kg)
        return DepositView(
            event_id=e.event_id,
            scale_id=e.scale_id,
            member_no=member_no,
            member_name=member_name,
            card_uid=e.card_uid,
            category_code=e.category_code,
            category_name=price.category_name if price else e.category_code,
            net_g=e.net_g,
            weight_text=kg(e.net_g),
            price_per_kg_idr=per_kg,
            price_text=None if per_kg is None else f"{rupiah(per_kg)}/kg",
            amount_idr=amount,
            amount_text=None if amount is None else rupiah(amount),
            recorded_at=e.recorded_at,
            recorded_text=tanggal(e.recorded_at, self.tz),
            time_text=jam(e.recorded_at, self.tz),
            attendant=e.attendant,
            status=e.status,
            status_text=SEND_TEXT[e.status],
            void_state=e.void_state,
            void_text=None if e.void_state is None else VOID_TEXT[e.void_state],
            void_reason=e.void_reason,
            void_error=e.void_error,
        )

    def live_view(self, r: ScaleReader) -> LiveView:
        session = r.session
        armed = session.armed if isinstance(session, AttendantSession) else None
        last = self.db.journal.get(r.last_event_id) if r.last_event_id else None
        card = None
        if r.last_card is not None and time.monotonic() - r.last_card[1] <= CARD_FRESH_S:
            holder = self.db.directory.by_card(r.last_card[0])
            card = CardView(
                uid=r.last_card[0],
                member_no=holder.member_no if holder else None,
                member_name=holder.name if holder else None,
            )
        grams = r.last.grams if r.last else None
        return LiveView(
            scale_id=r.cfg.id,
            connected=r.connected,
            grams=grams,
            weight_text="—" if grams is None else kg(grams),
            stable=(r.last.status == "stable") if r.last else None,
            armed_member_no=armed[0] if armed else None,
            armed_category_code=armed[1] if armed else None,
            waiting_for_zero=isinstance(session, AttendantSession) and session.waiting_for_zero,
            card=card,
            last_deposit=None if last is None else self.deposit_view(last),
            broker_connected=self.gw.connected.is_set(),
            outbox_depth=len(self.gw.outbox),
            central_online=self.central_online,
            pending_voids=self.db.journal.pending_voids(),
        )

    async def live(
        self, r: ScaleReader, signed_in: Callable[[], bool] = lambda: True
    ) -> AsyncIterator[LiveView]:
        """The scale's live view whenever it changes, until the gateway stops or the session
        ``signed_in`` checks ends (a logout, an account disabled); the client going away ends
        it too (FastAPI cancels the stream)."""
        live = self.gw.live
        last: LiveView | None = None
        self.streams += 1
        try:
            while not live.stopped and signed_in():
                seen = live.version
                view = self.live_view(r)
                if view != last:
                    yield view
                    last = view
                    await asyncio.sleep(LIVE_MIN_GAP_S)  # a rate limit, not a wait for an outcome
                await live.wait(seen, LIVE_REFRESH_S)
        finally:
            self.streams -= 1


_templates: "list[Jinja2Templates]" = []


def templates() -> "Jinja2Templates":
    """The page's Jinja2 environment, made at the first page request."""
    if not _templates:
        from fastapi.templating import Jinja2Templates

        _templates.append(Jinja2Templates(directory=str(HERE / "templates")))
    return _templates[0]


def _day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)


# ---- the session gate, and what routes depend on ---------------------------------------------


class SessionGate:
    """Deny by default: a request without a live session to anything but :data:`PUBLIC` (a
    path that does not exist too: no map of the routes for strangers) is answered 401 here,
    before routing and before its body is read. The session found is left in the request's
    state for :func:`session_dependency`."""

    def __init__(self, app: ASGIApp, service: AttendantService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        signed = self.service.signed_in(Request(scope).cookies.get(COOKIE))
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"].rstrip("/") or "/"
        if signed is None and (method, path) not in PUBLIC:
            response = JSONResponse(
                {"detail": NOT_SIGNED_IN}, 401, headers={"Cache-Control": "no-store"}
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["signed_in"] = signed
        await self.app(scope, receive, send)


def session_dependency(service: AttendantService) -> Callable[[Request], SignedIn]:
    """The request's live session (401 without one)."""

    def signed_in(request: Request) -> SignedIn:
        kept: object = request.scope.get("state", {}).get("signed_in")
        found = kept if isinstance(kept, SignedIn) else None
        if found is None:  # no gate in front (a router used on its own)
            found = service.signed_in(request.cookies.get(COOKIE))
        if found is None:
            raise HTTPException(401, NOT_SIGNED_IN)
        return found

    return signed_in


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def csrf_dependency(
    service: AttendantService, session: Callable[[Request], SignedIn]
) -> Callable[..., Awaitable[SignedIn]]:
    """For writes: the live session, and its CSRF token in the ``X-CSRF-Token`` header or the
    form's ``csrf_token`` field (403 otherwise). A cross-site page can neither read the token
    nor set the header without the gateway's CORS consent (it gives none)."""

    async def checked(request: Request, signed: Annotated[SignedIn, Depends(session)]) -> SignedIn:
        given: object = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
            given = (await request.form()).get(CSRF_FIELD)
        if not isinstance(given, str) or not service.check(signed.csrf, given):
            raise HTTPException(403, BAD_CSRF)
        return signed

    return checked


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(BaseModel):
    """A JSON login's answer (the session itself is the ``wb_petugas`` cookie set with it)."""

    username: str
    name: str
    role: str
    offline: bool
    csrf_token: str = Field(description="send it as X-CSRF-Token with every write")
    expires_at: datetime


# ---- routes -----------------------------------------------------------------------------------


def router(service: AttendantService) -> APIRouter:
    gw = service.gw
    r = APIRouter(prefix="/petugas", tags=["attendant"])
    current = session_dependency(service)
    SignedInDep = Annotated[SignedIn, Depends(current)]
    CsrfDep = Annotated[SignedIn, Depends(csrf_dependency(service, current))]

    def attendant_reader(scale_id: str) -> ScaleReader:
        reader = gw.readers.get(scale_id)
        if reader is None or reader.cfg.flow != "attendant":
            raise HTTPException(404, f"timbangan {scale_id} tidak ada / no such scale")
        return reader

    def page(
        request: Request,
        signed: SignedIn | None,
        error: str | None = None,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        context: dict[str, object] = {
            "who": signed.who if signed else None,
            "csrf": signed.csrf if signed else None,
            "csrf_field": CSRF_FIELD,
            "error": error,
            "gateway_id": gw.settings.gateway_id,
            "bank_code": gw.settings.bank_code,
            "central": gw.settings.api_url is not None,
        }
        nonce = None
        if signed is None:  # the login form: its token, bound to a nonce cookie
            kept = request.cookies.get(LOGIN_COOKIE, "")
            nonce = kept if 16 <= len(kept) <= 64 else secrets.token_urlsafe(16)
            context["login_token"] = service.login_token(nonce)
        response = templates().TemplateResponse(
            request,
            "attendant.html",
            context,
            status_code=status,
            headers={"Cache-Control": "no-store", **(headers or {})},
        )
        if nonce is not None and nonce != request.cookies.get(LOGIN_COOKIE):
            response.set_cookie(
                LOGIN_COOKIE,
                nonce,
                path="/petugas",
                httponly=True,
                samesite="strict",
                secure=_https(request),
            )
        return response

    def start_session(request: Request, who: Who) -> tuple[str, SignedIn]:
        """A new session for ``who`` (one the browser had is ended): its cookie and itself."""
        old = service.signed_in(request.cookies.get(COOKIE))
        if old is not None:
            service.end_session(old.sid)
        cookie = service.session_cookie(who)
        signed = service.signed_in(cookie)
        assert signed is not None
        log.info(
            "petugas masuk / attendant signed in: %s%s",
            who.username,
            " (offline)" if who.offline else "",
        )
        return cookie, signed

    def set_session(request: Request, response: Response, cookie: str) -> None:
        response.delete_cookie(COOKIE, path=LEGACY_COOKIE_PATH, httponly=True, samesite="strict")
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(service.settings.session_hours * 3600),
            path="/",
            httponly=True,
            samesite="strict",
            secure=_https(request),
        )

    def clear_session(response: Response) -> None:
        for path in ("/", LEGACY_COOKIE_PATH):
            response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict")

    @r.get("", response_class=HTMLResponse)
    async def attendant_page(request: Request) -> HTMLResponse:
        return page(request, service.signed_in(request.cookies.get(COOKIE)))

    @r.post("/masuk", response_class=HTMLResponse)
    async def login(
        request: Request,
        username: Annotated[str, Form(min_length=1, max_length=64)],
        password: Annotated[str, Form(min_length=1, max_length=256)],
        csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
    ) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or not service.check(service.login_token(nonce), csrf_token):
            return page(request, None, BAD_CSRF, 403)
        if gw.settings.api_url is None:
            return page(request, None, "api_url belum diatur / api_url is not set", 503)
        try:
            who = await service.login(username.strip(), password)
        except LoginRefused as exc:
            return page(request, None, exc.message, exc.status, exc.headers())
        response = RedirectResponse("/petugas", status_code=303)
        cookie, _ = start_session(request, who)
        set_session(request, response, cookie)
        response.delete_cookie(LOGIN_COOKIE, path="/petugas", httponly=True, samesite="strict")
        return response

    @r.post("/keluar")
    async def logout(
        request: Request,
        csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
    ) -> Response:
        signed = service.signed_in(request.cookies.get(COOKIE))
        if signed is not None:
            if not service.check(signed.csrf, csrf_token):
                raise HTTPException(403, BAD_CSRF)
            service.end_session(signed.sid)
            log.info("petugas keluar / attendant signed out: %s", signed.who.username)
        response = RedirectResponse("/petugas", status_code=303)
        clear_session(response)
        return response

    @r.post("/api/session", status_code=200)
    async def open_session(request: Request, body: LoginIn) -> JSONResponse:
        """Log in from a program (`wastebank attend`, `wastebank calibrate`): the session
        cookie and its CSRF token. JSON only (415 otherwise), so no other site's form can
        log a browser in."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise HTTPException(415, "kirim JSON / send application/json")
        if gw.settings.api_url is None:
            raise HTTPException(503, "api_url belum diatur / api_url is not set")
        try:
            who = await service.login(body.username.strip(), body.password)
        except LoginRefused as exc:
            raise HTTPException(exc.status, exc.message, exc.headers()) from None
        cookie, signed = start_session(request, who)
        out = SessionOut(
            username=who.username,
            name=who.name,
            role=who.role,
            offline=who.offline,
            csrf_token=signed.csrf,
            expires_at=datetime.now(UTC) + timedelta(hours=service.settings.session_hours),
        )
        response = JSONResponse(out.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
        set_session(request, response, cookie)
        return response

    @r.delete("/api/session", status_code=204)
    async def close_session(signed: CsrfDep) -> Response:
        service.end_session(signed.sid)
        log.info("petugas keluar / attendant signed out: %s", signed.who.username)
        response = Response(status_code=204)
        clear_session(response)
        return response

    @r.get("/attendant.js")
    async def script() -> FileResponse:
        return FileResponse(
            SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
        )

    @r.get("/api/state")
    async def state(signed: SignedInDep) -> StateView:
        who = signed.who
        d = service.db.directory
        members_at, prices_at = d.synced_at("members"), d.synced_at("prices")
        return StateView(
            who=WhoView(username=who.username, name=who.name, role=who.role, offline=who.offline),
            gateway_id=gw.settings.gateway_id,
            bank_code=gw.settings.bank_code,
            timezone=service.settings.timezone,
            today_text=tanggal(datetime.now(UTC), service.tz).rsplit(" ", 2)[0],
            scales=[
                ScaleChoice(scale_id=x.cfg.id, connected=x.connected)
                for x in gw.readers.values()
                if x.cfg.flow == "attendant"
            ],
            prices=[
                PriceView(
                    category_code=p.category_code,
                    category_name=p.category_name,
                    unit=p.unit,
                    price_idr=p.price_idr,
                    price_text=f"{rupiah(p.price_idr)}/{p.unit}",
                )
                for p in d.prices()
            ],
            members=d.count(),
            members_synced_text=None if members_at is None else tanggal(members_at, service.tz),
            prices_synced_text=None if prices_at is None else tanggal(prices_at, service.tz),
            central_configured=gw.settings.api_url is not None,
            central_online=service.central_online,
        )

    def member_view(m: MemberEntry) -> MemberView:
        return MemberView(member_no=m.member_no, name=m.name, kind=m.kind, cards=list(m.cards))

    @r.get("/api/members")
    async def members(_: SignedInDep, q: str = "") -> list[MemberView]:
        return [member_view(m) for m in service.db.directory.search(q[:64])]

    @r.get("/api/cards/{uid}")
    async def card(uid: str, _: SignedInDep) -> MemberView:
        m = service.db.directory.by_card(uid[:32])
        if m is None:
            raise HTTPException(404, f"kartu {uid} tidak dikenal / unknown card")
        return member_view(m)

    @r.post("/api/scales/{scale_id}/record")
    async def record(scale_id: str, body: RecordIn, signed: CsrfDep) -> LiveView:
        who = signed.who
        reader = attendant_reader(scale_id)
        d = service.db.directory
        member = d.member(body.member_no)
        if member is None and d.synced_at("members") is not None:
            raise HTTPException(422, f"nasabah {body.member_no} tidak dikenal / unknown member")
        price = d.price(body.category_code)
        if price is None and d.synced_at("prices") is not None:
            raise HTTPException(422, f"jenis {body.category_code} tidak ada / unknown category")
        assert isinstance(reader.session, AttendantSession)
        reader.session.arm(body.member_no, body.category_code, time.monotonic())
        reader.arm_context = ArmContext(
            attendant=who.username,
            member_name=member.name if member else None,
            price_per_kg_idr=price.price_idr if price else None,
        )
        log.info(
            "petugas / attendant %s armed %s: %s %s",
            who.username,
            scale_id,
            body.member_no,
            body.category_code,
        )
        gw.live.notify()
        return service.live_view(reader)

    @r.post("/api/scales/{scale_id}/cancel")
    async def cancel(scale_id: str, _: CsrfDep) -> LiveView:
        reader = attendant_reader(scale_id)
        assert isinstance(reader.session, AttendantSession)
        reader.session.cancel()
        reader.arm_context = None
        gw.live.notify()
        return service.live_view(reader)

    @r.get("/api/scales/{scale_id}/live", response_class=EventSourceResponse)
    async def live(
        request: Request,
        reader: Annotated[ScaleReader, Depends(attendant_reader)],
        _: SignedInDep,
    ) -> AsyncIterator[LiveView]:
        # The scale and the login are checked (dependencies) before the stream starts; the
        # stream ends when the session does (a logout, the account disabled).
        cookie = request.cookies.get(COOKIE)
        async for view in service.live(reader, lambda: service.signed_in(cookie) is not None):
            yield view

    @r.get("/api/deposits")
    async def deposits(_: SignedInDep) -> list[DepositView]:
        start, end = service.today()
        return [service.deposit_view(e) for e in service.db.journal.between(start, end)]

    @r.post("/api/deposits/{event_id}/void")
    async def void(event_id: str, body: VoidIn, signed: CsrfDep) -> DepositView:
        who = signed.who
        journal = service.db.journal
        try:
            entry = journal.request_void(event_id, body.reason, who.username, datetime.now(UTC))
        except KeyError:
            raise HTTPException(404, f"setoran {event_id} tidak ada / no such deposit") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        log.info("pembatalan diminta / void asked: %s by %s", event_id, who.username)
        service.wake()
        gw.live.notify()
        return service.deposit_view(entry)

    return r
