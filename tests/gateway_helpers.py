"""The gateway's attendant service against a fake central API, for tests of its local endpoint.

The central API is faked at httpx's transport seam (MockTransport): the gateway's client, its
error classification and everything above it are the real ones.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from gateway.app import Gateway
from gateway.central import Central
from gateway.http.attendant import AttendantService
from gateway.kiosk import AttendantSession
from gateway.settings import GatewaySettings
from wastebank.config import load_settings

BANK = "bs-batu-merah"
PASSWORD = "kata-sandi"


class FakeCentral:
    """The central API at the transport seam: a password, role and banks per user; ``down`` to
    cut the line; ``token_status`` (e.g. 429, 503) to make ``POST /api/token`` answer that."""

    def __init__(self) -> None:
        self.down = False
        self.users: dict[str, tuple[str, str, list[str]]] = {
            "petugas-bm-01": (PASSWORD, "attendant", [BANK, "bs-rijali"]),
            "petugas-bm-02": (PASSWORD, "attendant", [BANK]),
            "petugas-nsw-01": (PASSWORD, "attendant", ["bs-nusaniwe"]),
            "admin": (PASSWORD, "admin", []),
        }
        self.disabled: set[str] = set()
        self.voids: list[tuple[str, str]] = []
        self.void_status = 200
        self.void_detail = "x"
        self.token_status: int | None = None
        self.logins_asked: list[list[str]] = []
        self.stock_moves: list[tuple[str, dict[str, Any]]] = []  # (path, body) posted
        self.withdrawal_rows = {  # api/schemas.py WithdrawalOut, as the bank's list gives them
            wid: {
                "id": wid,
                "member_no": "AMB-0001",
                "member_name": "Siti",
                "bank_code": BANK,
                "amount_idr": 20_000,
                "method": "cash",
                "destination": None,
                "status": status,
                "requested_at": "2026-12-06T00:30:00+00:00",
                "requested_by": "AMB-0001",
                "decided_by": "petugas-bm-02" if status == "approved" else None,
                "dual_control": False,
                "available_idr": 80_000,
            }
            for wid, status in ((1, "requested"), (2, "approved"))
        }

    def may_log_in(self, username: str) -> bool:
        user = self.users.get(username)
        if user is None or username in self.disabled:
            return False
        return user[1] == "admin" or BANK in user[2]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("no route to host", request=request)
        path = request.url.path
        if path == "/api/token":
            if self.token_status is not None:
                return httpx.Response(
                    self.token_status,
                    json={"detail": f"status {self.token_status}"},
                    headers={"Retry-After": "42"} if self.token_status == 429 else {},
                )
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            user = self.users.get(form["username"])
            if user is None or user[0] != form["password"] or form["username"] in self.disabled:
                return httpx.Response(401, json={"detail": "wrong"})
            return httpx.Response(200, json={"access_token": f"tok-{form['username']}"})
        if path == f"/api/banks/{BANK}/prices":  # public
            price = {"category_code": "pet", "category_name": "PET", "unit": "kg"}
            return httpx.Response(200, json={"prices": [{**price, "price_idr": 4000}]})
        who = request.headers.get("authorization", "").removeprefix("Bearer tok-")
        if who not in self.users or who in self.disabled:
            return httpx.Response(401, json={"detail": "bad token"})
        _, role, banks = self.users[who]
        if path == "/api/me":
            return httpx.Response(
                200, json={"username": who, "role": role, "name": who.title(), "bank_codes": banks}
            )
        if path == f"/api/banks/{BANK}/gateway-logins":
            if not self.may_log_in(who):
                return httpx.Response(403, json={"detail": "not of this bank"})
            asked = request.url.params.get_list("username")
            self.logins_asked.append(asked)
            return httpx.Response(200, json={"allowed": [u for u in asked if self.may_log_in(u)]})
        desk = self.desk(request, path)
        if desk is not None:
            return desk
        withdrawals = self.withdrawals(request, path)
        if withdrawals is not None:
            return withdrawals
        stock = self.stock_and_day(request, path)
        if stock is not None:
            return stock
        if path == f"/api/banks/{BANK}/members":
            return httpx.Response(
                200,
                json=[{"member_no": "AMB-0001", "name": "Siti", "kind": "individual", "cards": []}],
            )
        if path.endswith("/void"):
            self.voids.append((path.split("/")[3], who))
            return httpx.Response(self.void_status, json={"detail": self.void_detail})
        return httpx.Response(404, json={"detail": "not found"})

    def withdrawals(self, request: httpx.Request, path: str) -> httpx.Response | None:
        """Withdrawals (api/bank.py): the bank's list, and a decision taken on one."""
        if path == f"/api/banks/{BANK}/withdrawals":
            return httpx.Response(200, json=list(self.withdrawal_rows.values()))
        if request.method != "POST" or not path.startswith("/api/withdrawals/"):
            return None
        wid, action = path.split("/")[3:5]
        row = self.withdrawal_rows.get(int(wid))
        if row is None:
            return httpx.Response(404, json={"detail": "not found"})
        status = {"approve": "approved", "reject": "rejected", "pay": "paid"}[action]
        row.update(json.loads(request.content or b"{}"), status=status)
        return httpx.Response(200, json=row)

    def stock_and_day(self, request: httpx.Request, path: str) -> httpx.Response | None:
        """Stock moves and the day (api/stock_moves.py, api/day.py), answered in their shape."""
        base = f"/api/banks/{BANK}/"
        if not path.startswith(base):
            return None
        rest = path.removeprefix(base)
        answers: dict[str, Any] = {
            "stock": {"bank_code": BANK, "stock_g": {}, "total_g": 0, "lines": []},
            "collectors": [{"code": "ud-galala-plastik", "name": "UD Galala Plastik"}],
        }
        if request.method == "GET" and rest in answers:
            return httpx.Response(200, json=answers[rest])
        if request.method == "GET" and rest.startswith("days/"):
            return httpx.Response(200, json={"local_date": rest.removeprefix("days/")})
        if request.method == "POST" and (rest in ("sales", "transfers", "residue")):
            sent = json.loads(request.content or b"{}")
            self.stock_moves.append((rest, sent))
            return httpx.Response(201, json={"id": len(self.stock_moves), **sent})
        if request.method == "POST" and rest.startswith("days/"):  # days/{date}/close
            return httpx.Response(201, json={"id": 1})
        return None

    def desk(self, request: httpx.Request, path: str) -> httpx.Response | None:
        """The bank's desk (api/member_desk.py): next number, registration, cards, PINs; a
        member read and changed (api/members.py: the SMS opt-in)."""
        if path == f"/api/banks/{BANK}/members/next-no":
            return httpx.Response(200, json={"member_no": "AMB-0099"})
        sent = json.loads(request.content or b"{}")
        member = {"kind": "individual", "name": "Siti", "cards": []}
        if (
            request.method in ("GET", "PATCH")
            and path.startswith("/api/members/")
            and path.count("/") == 3
        ):
            no = path.split("/")[3]
            one = {**member, "member_no": no, "phone": "081200000001", "sms_opt_in": False}
            return httpx.Response(200, json={**one, **sent})
        if request.method != "POST":
            return None
        if path == f"/api/banks/{BANK}/members":
            return httpx.Response(201, json={**member, **sent})
        no = path.split("/")[3] if path.startswith("/api/members/") else ""
        if path.endswith("/cards"):
            return httpx.Response(201, json={**member, "member_no": no, "cards": [sent["uid"]]})
        if path.endswith("/pin"):
            issued = {"member_no": no, "name": "Siti", "username": no, "pin": "135792"}
            at = "2026-12-06T00:30:00+00:00"
            return httpx.Response(200, json={**issued, "created": True, "issued_at": at})
        return None


def gateway_settings(tmp_path: Path, **values: Any) -> GatewaySettings:
    """One attendant scale, cheap argon2, the central API at http://central.test."""
    merged: dict[str, Any] = {
        "bank_code": BANK,
        "api_url": "http://central.test",
        "outbox": {"path": tmp_path / "outbox.db"},
        "scales": [{"id": "scale-01", "port": tmp_path / "tty", "flow": "attendant"}],
        "attendant": {"argon2_time_cost": 1, "argon2_memory_kib": 8, "timezone": "Asia/Jayapura"},
        **values,
    }
    return load_settings(GatewaySettings, **merged)


@contextlib.asynccontextmanager
async def attendant_service(
    settings: GatewaySettings, fake: FakeCentral
) -> AsyncIterator[AttendantService]:
    """The gateway (not running: no scale or broker tasks) and its attendant service, with the
    fake central API behind the real client. Its scales count as connected, as their port tasks
    would set them (a disconnected scale cannot be armed): none is opened here."""
    gw = Gateway(settings)
    for reader in gw.readers.values():
        reader.connected = True
    svc = AttendantService(gw)
    assert svc.central is None  # made on first use
    svc.central = Central("http://central.test", timeout_s=1, transport=httpx.MockTransport(fake))
    try:
        yield svc
    finally:
        await svc.aclose()
        gw.outbox.close()


async def gateway_login(client: httpx.AsyncClient, username: str, password: str) -> bool:
    """Log ``client`` in at a gateway's local endpoint (JSON, as `wastebank attend` does) and send
    the session's CSRF token with its every request from then on; False while the gateway does
    not answer yet (for ``eventually``)."""
    try:
        resp = await client.post(
            "/petugas/api/session", json={"username": username, "password": password}
        )
    except httpx.HTTPError:
        return False
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
    return True


def armed(svc: AttendantService, scale_id: str = "scale-01") -> tuple[str, str] | None:
    """The member and category armed on the scale's attendant session, if any."""
    session = svc.gw.readers[scale_id].session
    assert isinstance(session, AttendantSession)
    return session.armed
