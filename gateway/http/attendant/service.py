"""The attendant's accounts on the gateway, and their link to the central API: logins (online,
or from the cache), sessions and their CSRF tokens, the member directory and price list kept in
step, and the queue of voids. No FastAPI here: the routes are in this package's other modules."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeVar
from zoneinfo import ZoneInfo

from gateway.app import Gateway
from gateway.attendant_store import CachedLogin, PendingVoid
from gateway.central import Central, Me, RateLimited, Refused, Unreachable
from gateway.http.attendant.login_limit import WINDOW_S as LOGIN_WINDOW_S
from gateway.http.attendant.login_limit import Locked, LoginLimit
from wastebank.errors import ALREADY_VOIDED, Forbidden, TooMany, Unavailable
from wastebank.errors import Refused as RefusedFamily

if TYPE_CHECKING:
    from argon2 import PasswordHasher

log = logging.getLogger("wastebank.gateway")
T = TypeVar("T")

HASHES_AT_ONCE: Final = 1
"""Password hashes (argon2: ``argon2_memory_kib``, 7 MiB, each) run at once, on one thread of
their own: a flood of logins costs the Pi one hash's memory, not one per login."""
HASH_WAIT_S: Final = 5
"""A login waits this long for its turn to hash, then is answered 503 with this Retry-After."""
VOID_RETRY_S: Final = 5.0
"""A queued void is tried this soon; a deposit not yet in the ledger (404) doubles it, up to
``sync_interval_s``."""
WRONG: Final = "nama pengguna atau kata sandi salah / wrong username or password"

SyncPart = Callable[[str], Awaitable[bool]]
"""One round of a page's own sync with the central API (given the newest token); True while it
has queued work to retry soon."""
SYNC_PARTS: list[Callable[[AttendantService], SyncPart]] = []
"""Pages with a copy or a queue of their own (withdrawals: :mod:`.withdrawal_desk`) register a
factory here at their import; each service makes its parts and runs them in
:meth:`AttendantService.run`, after the voids."""


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


class LoginRefused(RefusedFamily):
    """A login refused here: wrong credentials (401); see :class:`LoginForbidden` (403) and
    :class:`LoginLimited` (429)."""

    status = 401
    title = "gagal masuk / login refused"

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str] | None:
        return None if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


class LoginForbidden(LoginRefused, Forbidden):
    """The account may not log in at this bank's gateway."""

    status = Forbidden.status


class LoginLimited(LoginRefused, TooMany):
    """Too many tries: here, or the central API said so (``retry_after_s``)."""

    status = TooMany.status


class LoginBusy(LoginRefused, Unavailable):
    """Every hashing turn taken for :data:`HASH_WAIT_S`: try again shortly."""

    status = Unavailable.status


class AttendantService:
    """Logins (online, or from the cache), directory and price sync, and the void queue."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.settings = gw.settings.attendant
        self.tz = ZoneInfo(self.settings.timezone)
        self.db = gw.attendant_db
        api = gw.settings.api_url
        self.api_url = str(api) if api else None
        # httpx, argon2 and pyjwt are heavy on a Pi (docs/scaling.md; gateway.run keeps PyJWT's
        # cryptography out): loaded when the page is first used, not at the start of a gateway
        # whose bank never opens it.
        self.central: Central | None = None
        self._hasher: PasswordHasher | None = None
        self.central_online: bool | None = None
        self.key = self.db.secret("attendant-session")
        self.tokens: dict[str, str] = {}  # username -> central API bearer token (memory only)
        self.limit = LoginLimit(
            gw.outbox.connection,
            per_account=self.settings.max_login_failures,
            per_client=self.settings.max_login_failures_per_client,
            logger=log,
        )
        self._hashing = asyncio.Semaphore(HASHES_AT_ONCE)
        self._hash_pool: ThreadPoolExecutor | None = None
        self.hashes = 0
        """Password hashes and checks run since the start."""
        self._wake = asyncio.Event()
        self._members_at = -float("inf")
        self._logins_at = -float("inf")
        self.streams = 0
        """Live streams open now (pages showing a scale: :func:`views.live`)."""
        self.live_by_session: Counter[str] = Counter()
        """Of :attr:`streams`, those of each session (its id)."""
        self.parts = [make(self) for make in SYNC_PARTS]

    async def aclose(self) -> None:
        if self.central is not None:
            await self.central.aclose()
        if self._hash_pool is not None:
            self._hash_pool.shutdown(wait=False)

    def api(self) -> Central | None:
        """The central API's client (made on first use); None without ``api_url``."""
        if self.central is None and self.api_url is not None:
            self.central = Central(self.api_url, timeout_s=self.settings.api_timeout_s)
        return self.central

    @property
    def hasher(self) -> PasswordHasher:
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

    async def _hashed(self, work: Callable[[], T]) -> T:
        """``work`` (an argon2 hash or check) in its turn: :data:`HASHES_AT_ONCE` at once, on
        the hashing thread (one thread: glibc keeps a thread's freed 7 MiB for its next hash,
        so a pool of threads would keep one hash's memory each); :class:`LoginBusy` after
        :data:`HASH_WAIT_S` without a turn."""
        try:
            async with asyncio.timeout(HASH_WAIT_S):
                await self._hashing.acquire()
        except TimeoutError:
            raise LoginBusy(
                "gateway sedang sibuk memeriksa kata sandi, coba lagi sebentar lagi / the "
                "gateway is busy checking passwords, try again shortly",
                HASH_WAIT_S,
            ) from None
        try:
            if self._hash_pool is None:
                self._hash_pool = ThreadPoolExecutor(1, thread_name_prefix="argon2")
            self.hashes += 1
            return await asyncio.get_running_loop().run_in_executor(self._hash_pool, work)
        finally:
            self._hashing.release()

    async def _verify(self, password_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        def verify() -> bool:
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await self._hashed(verify)

    async def login(self, username: str, password: str, client: str | None = None) -> Who:
        """Check the credentials with the central API, or with the cache when it cannot be
        reached (no network, a timeout, a 5xx); :class:`LoginRefused` (401, 403, 429, 503)
        otherwise. A 429 from the central API is its answer, not an outage: refused, never
        let in from the cache. The try is taken from ``username``'s and ``client``'s (the
        address) before any password is checked (:class:`LoginLimit`): a wrong password
        (401) uses it up."""
        try:
            with self.limit.attempt(username, client) as attempt:
                try:
                    return await self._login(username, password)
                except LoginRefused as exc:
                    if exc.status == LoginRefused.status:
                        attempt.failed()
                    raise
        except Locked as exc:
            if exc.busy:
                raise LoginLimited(
                    "terlalu banyak percobaan bersamaan, coba lagi sebentar lagi / too many "
                    "tries at once: try again shortly",
                    HASH_WAIT_S,
                ) from None
            raise LoginLimited(
                "terlalu banyak percobaan; tunggu 15 menit / too many tries: wait 15 minutes",
                int(LOGIN_WINDOW_S),
            ) from None

    async def _login(self, username: str, password: str) -> Who:
        now = datetime.now(UTC)
        central = self.api()
        if central is not None:
            who = await self._login_online(central, username, password, now)
            if who is not None:
                return who
        return await self._login_cached(username, password, now)

    async def _login_online(
        self, central: Central, username: str, password: str, now: datetime
    ) -> Who | None:
        """The central API's answer; None when it cannot be reached now (the cache decides)."""
        try:
            token = await central.token(username, password)
            me = await central.me(token)
        except RateLimited as exc:
            self._online(True)
            raise LoginLimited(
                "API pusat: terlalu banyak percobaan, coba lagi nanti / the central API "
                f"refuses more tries for now: {exc.detail}",
                exc.retry_after_s,
            ) from None
        except Refused:
            self._online(True)
            cached = self.db.logins.get(username, now)
            if cached is not None and await self._verify(cached.password_hash, password):
                # the password that worked is refused now: changed or disabled centrally
                self.end_login(cached.username, "ditolak pusat / refused centrally")
            raise LoginRefused(WRONG) from None
        except Unreachable as exc:
            self._online(False, str(exc))
            return None
        self._online(True)
        return await self._accepted(me, token, password, now)

    async def _accepted(self, me: Me, token: str, password: str, now: datetime) -> Who:
        """The central API accepted the password: cached for offline logins, if the account
        may log in here."""
        if not self._allowed(me.role, me.bank_codes):
            self.end_login(me.username, "bukan petugas bank ini / not of this bank")
            bank = self.gw.settings.bank_code
            raise LoginForbidden(f"hanya petugas {bank} / only attendants of this bank")
        password_hash = await self._hashed(lambda: self.hasher.hash(password))
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

    async def _login_cached(self, username: str, password: str, now: datetime) -> Who:
        cached: CachedLogin | None = self.db.logins.get(username, now)
        if cached is None:
            raise LoginRefused(
                f"{WRONG}; tanpa internet hanya petugas yang pernah masuk dalam "
                f"{self.settings.login_cache_days:g} hari terakhir / offline, only attendants who "
                "logged in online recently",
            )
        if not await self._verify(cached.password_hash, password):
            raise LoginRefused(WRONG)
        if not self._allowed(cached.role, cached.bank_codes):
            raise LoginForbidden("bukan petugas bank ini / not an attendant of this bank")
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
            members, members_changed = await central.fetch_members(bank, token)
            prices, prices_changed = await central.fetch_prices(bank)
        except Unreachable as exc:
            self._unreachable(exc)
            return False
        except Refused as exc:
            self._online(True)
            if exc.status_code == 401:  # expired (an hour by default) or revoked: not used again
                self.tokens = {u: t for u, t in self.tokens.items() if t != token}
            log.warning("daftar nasabah ditolak / member list refused: %s", exc)
            return False
        self._online(True)
        now = datetime.now(UTC)
        d = self.db.directory
        # unchanged (304): only the time it was last known fresh (the page shows its age)
        if members_changed:
            d.replace_members(bank, members, now)
        else:
            d.mark_synced("members", now)
        if prices_changed:
            d.replace_prices(prices, now)
        else:
            d.mark_synced("prices", now)
        await self._sync_bank_name(central, bank)
        self._members_at = time.monotonic()
        if members_changed or prices_changed:
            log.info(
                "daftar nasabah / directory synced: %d members, %d prices",
                len(members),
                len(prices),
            )
        return True

    async def _sync_bank_name(self, central: Central, bank: str) -> None:
        """The header's bank name; a failure here keeps the name (or the code) already shown."""
        try:
            name = await central.bank_name(bank)
        except (Unreachable, Refused) as exc:
            log.info("nama bank tidak diperbarui / bank name not refreshed: %s", exc)
            return
        if name:
            self.db.directory.set_bank_name(name)

    async def refresh(self, token: str | None) -> bool:
        """Members and prices from the central API now (the page's Segarkan / Refresh):
        whether the central API answered. Without a token (an offline login) prices only."""
        if token is None:
            await self.sync_prices()
            return self.central_online is True
        return await self.sync_members(token)

    async def sync_prices(self) -> None:
        central = self.api()
        if central is None:
            return
        try:
            prices, changed = await central.fetch_prices(self.gw.settings.bank_code)
        except Unreachable as exc:
            self._unreachable(exc)
            return
        except Refused as exc:
            log.warning("daftar harga ditolak / price list refused: %s", exc)
            return
        self._online(True)
        if changed:
            self.db.directory.replace_prices(prices, datetime.now(UTC))
        else:
            self.db.directory.mark_synced("prices", datetime.now(UTC))

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
            if exc.status_code == 401:  # expired or revoked: not used again
                self.tokens = {u: t for u, t in self.tokens.items() if t != token}
            elif exc.status_code == 403 and owner is not None:  # no longer of this bank
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
        for void in self.db.journal.due_voids(datetime.now(UTC)):
            token = self.tokens.get(void.by)
            if token is None:
                continue  # waits until that attendant logs in again while online
            if not await self._send_void(central, void, token):
                return
            self.gw.live.notify()

    async def _send_void(self, central: Central, void: PendingVoid, token: str) -> bool:
        """One void to the central API; False when the rest must wait (a 429, an outage)."""
        journal = self.db.journal
        now = datetime.now(UTC)
        try:
            await central.void(void.event_id, void.reason, token)
        except RateLimited as exc:
            self._online(True)
            wait = exc.retry_after_s or VOID_RETRY_S
            journal.void_retry(void.event_id, str(exc), now + timedelta(seconds=wait))
            return False
        except Unreachable as exc:
            self._online(False, str(exc))
            return False
        except Refused as exc:
            self._online(True)
            self._void_refused(void, exc, now)
        else:
            self._online(True)
            journal.void_done(void.event_id, now)
            log.info("setoran dibatalkan / deposit voided: %s", void.event_id)
        return True

    def _void_refused(self, void: PendingVoid, exc: Refused, now: datetime) -> None:
        journal = self.db.journal
        if exc.status_code == 409 and exc.detail.startswith(ALREADY_VOIDED):
            # voided there already (an earlier try's answer lost); any other 409 (the money
            # withdrawn, the waste sold) is a refusal the attendant must see, not a done void
            journal.void_done(void.event_id, now)
        elif exc.status_code == 404:  # not in the ledger yet: the ingester is behind
            delay = min(self.settings.sync_interval_s, VOID_RETRY_S * 2**void.attempts)
            journal.void_retry(void.event_id, exc.detail, now + timedelta(seconds=delay))
        elif exc.status_code == 401:
            self.tokens.pop(void.by, None)
        else:
            journal.void_refused(void.event_id, exc.detail, now)
            log.warning("pembatalan ditolak / void refused: %s: %s", void.event_id, exc)

    async def run(self) -> None:
        """Sync prices and members (every ``directory_poll_s``), logins (``sync_interval_s``)
        and queued voids while online, once an attendant has logged in online since the start
        (their token is what the member list and voids need; until then the copy in SQLite
        serves); never raises."""
        while True:
            self._wake.clear()
            busy: list[bool] = []
            try:
                token = next(reversed(self.tokens.values()), None)
                if token is not None:
                    # members and prices within directory_poll_s (<= 60 s), logins less often
                    if time.monotonic() - self._members_at >= self.settings.directory_poll_s:
                        await self.sync_members(token)
                    else:
                        await self.sync_prices()
                    if time.monotonic() - self._logins_at >= self.settings.sync_interval_s:
                        self._logins_at = time.monotonic()
                        await self.sync_logins(token)
                    await self.send_voids()
                    busy = [await part(token) for part in self.parts]
                now = datetime.now(UTC)
                self.db.journal.prune(now - timedelta(days=90))
                self.db.sessions.prune(now)
            except Exception:
                log.exception("sinkron petugas gagal / attendant sync failed")
            wait = min(self.settings.sync_interval_s, self.settings.directory_poll_s)
            if self.db.journal.pending_voids() or any(busy):
                wait = min(wait, VOID_RETRY_S)
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass
