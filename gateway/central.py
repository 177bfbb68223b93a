"""The central API as the attendant page uses it: logins, the bank's members and prices, voids.

A thin adapter: each call either returns parsed data, raises :class:`Unreachable` (no network,
a timeout, a 5xx: try again later, the page works offline meanwhile), :class:`RateLimited` (a 429:
the API is there and said "not now"; a retry waits, but it is never taken for an outage, so a
login it refuses is never let in from the offline cache) or :class:`Refused` (the API answered
no, for good: a wrong password, not allowed, not found).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.attendant_store import MemberEntry, PriceEntry
from gateway.withdrawal_store import WithdrawalRow
from wastebank import errors

if TYPE_CHECKING:
    import httpx

PAGE = 1000  # GET /api/banks/{bank}/members: its largest page
MAX_LOGINS_ASKED = 100  # GET /api/banks/{bank}/gateway-logins: usernames per request


class Unreachable(errors.Unavailable):
    """Not reachable now, or not able to answer now: retry later."""


class RateLimited(Unreachable):
    """HTTP 429: too many tries (e.g. of one account's password). Retry after ``retry_after_s``;
    a login refused so is refused (the central API is reachable: not a case for the cache)."""

    status = errors.TooMany.status
    title = errors.TooMany.title

    def __init__(self, detail: str, retry_after_s: int | None) -> None:
        super().__init__(f"HTTP 429: {detail}")
        self.detail = detail
        self.retry_after_s = retry_after_s


class Refused(errors.Refused):
    """The API answered with a refusal (4xx other than 429): its ``status_code`` and its
    message, ``detail``."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class Me:
    username: str
    role: str
    name: str
    bank_codes: tuple[str, ...]


@dataclass(frozen=True)
class Applied:
    """A deposit as the ledger applied it (``GET /api/banks/{bank}/deposits?event_id=``)."""

    event_id: str
    amount_idr: int
    price_idr: int
    applied_at: datetime
    voided: bool


class Central:
    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        import httpx  # heavy on a Pi: loaded when the attendant page first needs the central API

        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"User-Agent": "wastebank-gateway"},
            transport=transport,
        )
        self._tags: dict[str, tuple[str, Any]] = {}  # URL -> (ETag, body): _get_tagged

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, url: str, **kw: Any) -> Any:
        return _parsed(await self._send(method, url, **kw))

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        import httpx

        try:
            return await self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from None

    async def _get_tagged(self, url: str, **kw: Any) -> tuple[Any, bool]:
        """A conditional GET (api/conditional.py): the body, and whether it changed since the
        last answer to the same URL (a 304 answers with the body kept from then). The gateway
        polls its lists often (docs/attendant.md, "Nasabah di bank"); unchanged, they cost a
        few bytes and no write to the SD card."""
        key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted((kw.get("params") or {}).items()))
        kept = self._tags.get(key)
        headers = dict(kw.pop("headers", None) or {})
        if kept is not None:
            headers["If-None-Match"] = kept[0]
        resp = await self._send("GET", url, headers=headers, **kw)
        if resp.status_code == 304 and kept is not None:
            return kept[1], False
        body = _parsed(resp)
        tag = resp.headers.get("etag")
        if tag:
            self._tags[key] = (tag, body)
        return body, True

    async def token(self, username: str, password: str) -> str:
        body = await self._call(
            "POST", "/api/token", data={"username": username, "password": password}
        )
        return str(body["access_token"])

    async def me(self, token: str) -> Me:
        body = await self._call("GET", "/api/me", headers=_bearer(token))
        return Me(
            username=str(body["username"]),
            role=str(body["role"]),
            name=str(body.get("name") or body["username"]),
            bank_codes=tuple(str(c) for c in body.get("bank_codes") or ()),
        )

    async def members(self, bank_code: str, token: str) -> list[MemberEntry]:
        return (await self.fetch_members(bank_code, token))[0]

    async def fetch_members(self, bank_code: str, token: str) -> tuple[list[MemberEntry], bool]:
        """The bank's members, and whether any page changed since the last fetch (ETag)."""
        out: list[MemberEntry] = []
        changed = False
        while True:
            page, fresh = await self._get_tagged(
                f"/api/banks/{bank_code}/members",
                params={"limit": PAGE, "offset": len(out)},
                headers=_bearer(token),
            )
            changed = changed or fresh
            out.extend(
                MemberEntry(
                    member_no=str(m["member_no"]),
                    name=str(m.get("name") or ""),
                    kind=str(m.get("kind") or ""),
                    cards=tuple(str(c) for c in m.get("cards") or ()),
                )
                for m in page
            )
            if len(page) < PAGE:
                return out, changed

    async def prices(self, bank_code: str) -> list[PriceEntry]:
        return (await self.fetch_prices(bank_code))[0]

    async def fetch_prices(self, bank_code: str) -> tuple[list[PriceEntry], bool]:
        """The bank's price list in force, and whether it changed since the last fetch (ETag)."""
        body, changed = await self._get_tagged(f"/api/banks/{bank_code}/prices")
        prices = [
            PriceEntry(
                category_code=str(p["category_code"]),
                category_name=str(p["category_name"]),
                unit=str(p["unit"]),
                price_idr=int(p["price_idr"]),
            )
            for p in body["prices"]
        ]
        return prices, changed

    # -- the bank's desk (gateway/http/attendant/members.py; api/member_desk.py) --

    async def next_member_no(self, bank_code: str, token: str) -> str:
        body = await self._call(
            "GET", f"/api/banks/{bank_code}/members/next-no", headers=_bearer(token)
        )
        return str(body["member_no"])

    async def register_member(self, bank_code: str, fields: dict[str, Any], token: str) -> Any:
        """``POST /api/banks/{bank}/members``: the member as registered (``MemberOut``)."""
        return await self._call(
            "POST", f"/api/banks/{bank_code}/members", json=fields, headers=_bearer(token)
        )

    async def add_card(self, member_no: str, uid: str, token: str) -> Any:
        return await self._call(
            "POST", f"/api/members/{member_no}/cards", json={"uid": uid}, headers=_bearer(token)
        )

    async def member(self, member_no: str, token: str) -> Any:
        """``GET /api/members/{no}``: the member (``MemberOut``; its personal fields, the SMS
        opt-in among them, for the bank's staff)."""
        return await self._call("GET", f"/api/members/{member_no}", headers=_bearer(token))

    async def update_member(self, member_no: str, fields: dict[str, Any], token: str) -> Any:
        """``PATCH /api/members/{no}`` (e.g. ``{"sms_opt_in": true}``): the member as changed."""
        return await self._call(
            "PATCH", f"/api/members/{member_no}", json=fields, headers=_bearer(token)
        )

    async def issue_pin(self, member_no: str, reset: bool, token: str) -> Any:
        """A PIN issued (or reset): its answer holds the PIN, which nothing here keeps."""
        return await self._call(
            "POST", f"/api/members/{member_no}/pin", json={"reset": reset}, headers=_bearer(token)
        )

    async def bank_name(self, bank_code: str) -> str | None:
        """The bank's name (``GET /api/banks``, the city's list): what the attendant's header
        shows instead of its code; None when the list does not have it."""
        body = await self._call("GET", "/api/banks")
        for b in body if isinstance(body, list) else ():
            if isinstance(b, dict) and b.get("code") == bank_code and b.get("name"):
                return str(b["name"])
        return None

    async def allowed_logins(
        self, bank_code: str, usernames: Sequence[str], token: str
    ) -> frozenset[str]:
        """Which of ``usernames`` may log in at this bank's gateway now (active, and an admin or
        an attendant of the bank): the others were disabled, removed or moved elsewhere."""
        allowed: set[str] = set()
        for start in range(0, len(usernames), MAX_LOGINS_ASKED):
            body = await self._call(
                "GET",
                f"/api/banks/{bank_code}/gateway-logins",
                params=[("username", u) for u in usernames[start : start + MAX_LOGINS_ASKED]],
                headers=_bearer(token),
            )
            allowed.update(str(u) for u in body["allowed"])
        return frozenset(allowed)

    async def applied(
        self, bank_code: str, event_ids: Sequence[str], token: str
    ) -> dict[str, Applied]:
        """Which of ``event_ids`` the ledger has applied at the bank, and what it credited (the
        others are not in the ledger yet). At most 100 ids a call (the API's limit)."""
        body = await self._call(
            "GET",
            f"/api/banks/{bank_code}/deposits",
            params=[("event_id", e) for e in event_ids],
            headers=_bearer(token),
        )
        return {
            str(d["event_id"]): Applied(
                event_id=str(d["event_id"]),
                amount_idr=int(d["amount_idr"]),
                price_idr=int(d["price_per_kg_idr"]),
                applied_at=datetime.fromisoformat(str(d["applied_at"])),
                voided=bool(d["voided"]),
            )
            for d in body["deposits"]
        }

    async def withdrawals(self, bank_code: str, token: str) -> list[WithdrawalRow]:
        """The bank's newest withdrawals (``GET /api/banks/{bank}/withdrawals``), with the
        member's name and what they may still withdraw."""
        body = await self._call(
            "GET", f"/api/banks/{bank_code}/withdrawals", headers=_bearer(token)
        )
        now = datetime.now(UTC)
        return [withdrawal_row(w, now) for w in body]

    async def withdrawal_action(
        self, withdrawal_id: int, action: str, token: str, body: dict[str, str | None]
    ) -> WithdrawalRow:
        """``POST /api/withdrawals/{id}/approve|reject|pay`` with the acting attendant's token;
        the withdrawal as it is now."""
        answer = await self._call(
            "POST", f"/api/withdrawals/{withdrawal_id}/{action}", json=body, headers=_bearer(token)
        )
        return withdrawal_row(answer, datetime.now(UTC))

    async def void(self, event_id: str, reason: str, token: str) -> None:
        await self._call(
            "POST",
            f"/api/deposits/{event_id}/void",
            json={"reason": reason},
            headers=_bearer(token),
        )

    # ---- stock and the day (gateway/http/attendant/stock.py, day.py): the API's JSON as is --

    async def bank_get(
        self, bank_code: str, path: str, token: str, params: dict[str, Any] | None = None
    ) -> Any:
        """``GET /api/banks/{bank}/{path}``: ``stock``, ``collectors``, ``movements``,
        ``days/{date}``."""
        return await self._call(
            "GET", f"/api/banks/{bank_code}/{path}", params=params, headers=_bearer(token)
        )

    async def bank_post(self, bank_code: str, path: str, body: Any, token: str) -> Any:
        """``POST /api/banks/{bank}/{path}``: ``sales``, ``transfers``, ``residue``,
        ``days/{date}/close``."""
        return await self._call(
            "POST", f"/api/banks/{bank_code}/{path}", json=body, headers=_bearer(token)
        )


def withdrawal_row(w: dict[str, Any], now: datetime) -> WithdrawalRow:
    """A withdrawal as the central API answers it (api/schemas.py ``WithdrawalOut``)."""

    def at(key: str) -> datetime | None:
        value = w.get(key)
        return None if value is None else datetime.fromisoformat(str(value))

    def text(key: str) -> str | None:
        value = w.get(key)
        return None if value is None else str(value)

    requested_at = at("requested_at")
    assert requested_at is not None, "a withdrawal has its request time"
    available = w.get("available_idr")
    return WithdrawalRow(
        id=int(w["id"]),
        member_no=str(w["member_no"]),
        member_name=text("member_name"),
        amount_idr=int(w["amount_idr"]),
        method=str(w["method"]),
        destination=text("destination"),
        status=str(w["status"]),
        requested_at=requested_at,
        requested_by=str(w["requested_by"]),
        decided_at=at("decided_at"),
        decided_by=text("decided_by"),
        reason=text("reason"),
        paid_at=at("paid_at"),
        paid_by=text("paid_by"),
        payout_ref=text("payout_ref"),
        dual_control=bool(w.get("dual_control")),
        available_idr=None if available is None else int(available),
        synced_at=now,
    )


def _parsed(resp: httpx.Response) -> Any:
    """The answer's JSON, or the error it is (see the module's docstring)."""
    if resp.status_code == 429:
        raise RateLimited(_detail(resp), _retry_after(resp))
    if resp.status_code >= 500:
        raise Unreachable(f"HTTP {resp.status_code}: {_detail(resp)}")
    if resp.status_code >= 400:
        raise Refused(resp.status_code, _detail(resp))
    try:
        return resp.json()
    except ValueError:
        raise Unreachable(f"HTTP {resp.status_code}: not JSON") from None


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _retry_after(resp: httpx.Response) -> int | None:
    """Retry-After in seconds (the API sends seconds, never a date)."""
    value = resp.headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return str(body["detail"])
    if isinstance(body, dict) and isinstance(body.get("detail"), list):  # the API's 422
        said = [e.get("msg") for e in body["detail"] if isinstance(e, dict)]
        if said and all(isinstance(m, str) for m in said):
            return "; ".join(str(m) for m in said)[:500]
    return str(body)[:200]
