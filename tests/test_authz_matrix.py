"""Every route of the app x every role: allowed or refused, never a 5xx; and every route of a
gateway's local endpoint x (no session, an attendant's session, a wrong CSRF token).

The roles: anonymous; citizen A (AMB-0001 at bs-batu-merah) and citizen B (AMB-0002, the same
bank); the attendant of bank 1 (bs-batu-merah, an induk) and of bank 2 (bs-nusaniwe, another
bank); DLH staff of the city; an admin. Each request targets citizen A or bank 1, so the cells
include a citizen reading another citizen's account and an attendant writing at another bank.

``MATRIX`` must name every (method, path) of the app: a new route without an entry fails
:func:`test_every_route_is_in_the_matrix`. A refusal is 401 without a login (the pages: a
redirect to the login page); with one, 404 when the caller may not even read the member,
deposit or withdrawal concerned (its existence is not disclosed), else 403. Writes build what
they change first (a fresh deposit, withdrawal, member number, future price), so every cell
stands alone on the module's one ledger (per backend).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from api.settings import PagesSettings
from gateway.app import Gateway
from gateway.attendant_store import MemberEntry
from gateway.central import withdrawal_row
from gateway.http import local_api
from gateway.http.attendant import AttendantService
from gateway.kiosk import DepositCandidate
from gateway.settings import PrinterSettings
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import LedgerFactory
from tests.gateway_helpers import FakeCentral, attendant_service, gateway_settings
from wastebank import ledger, services
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx

pytestmark = pytest.mark.integration

ROLES = ("anonymous", "citizen_a", "citizen_b", "attendant_1", "attendant_2", "dlh", "admin")
SIGNED_IN = frozenset(ROLES) - {"anonymous"}
EVERYONE = frozenset(ROLES)
A_READERS = frozenset({"citizen_a", "attendant_1", "dlh", "admin"})  # citizen A's account
PERSONAL_A = A_READERS - {"dlh"}  # what names A: the page, statements, receipts
BANK1_READERS = frozenset({"attendant_1", "dlh", "admin"})
BANK1_ACTORS = frozenset({"attendant_1", "admin"})  # prices, members, withdrawal decisions
BANK1_STAFF = frozenset({"attendant_1"})  # deposits, voids, sales: the bank's own staff

WIT = ZoneInfo("Asia/Jayapura")  # the demo city's zone
MEMBER_A = "AMB-0001"
BANK_1 = "bs-batu-merah"
ATTENDANT_1 = "petugas-bm-01"


@dataclass(frozen=True)
class Req:
    method: str
    url: str
    json: Any = None
    data: dict[str, str] | None = None
    params: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None


class Env(ApiEnv):
    """The app and a ledger seeded with citizen A's savings (Rp800,000 of PET at bank 1)."""

    def __init__(self, url: str, settings: Any) -> None:
        super().__init__(url, settings)
        self.seq = itertools.count(1)
        with Session(self.engine) as s:
            ledger.record_manual_deposit(
                s,
                bank_code=BANK_1,
                member_no=MEMBER_A,
                category_code="pet",
                net_g=200_000,
                measured_at=datetime.now(UTC) - timedelta(hours=1),
                author=ATTENDANT_1,
                reason="tabungan awal uji / test savings",
            )
            s.commit()

    def deposit(self) -> str:
        """A fresh manual deposit of A's at bank 1: its event id."""
        with Session(self.engine) as s:
            event_id = ledger.record_manual_deposit(
                s,
                bank_code=BANK_1,
                member_no=MEMBER_A,
                category_code="pet",
                net_g=1000,
                measured_at=datetime.now(UTC) - timedelta(minutes=5),
                author=ATTENDANT_1,
                reason="uji / test",
            ).event_id
            s.commit()
            return event_id

    def member(self) -> str:
        """A fresh member of bank 1 with no login and no card: their number."""
        member_no = f"MTX-D{next(self.seq):04d}"
        with Session(self.engine) as s:
            bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == BANK_1))
            assert bank is not None
            ledger.create_member(s, bank=bank, member_no=member_no, name="Uji Meja")
            s.commit()
        return member_no

    def rijali_stock(self) -> str:
        """Bank 1's unit Rijali with 100 g more PET (a deposit of AMB-0201's): its code."""
        with Session(self.engine) as s:
            ledger.record_manual_deposit(
                s,
                bank_code="bs-rijali",
                member_no="AMB-0201",
                category_code="pet",
                net_g=100,
                measured_at=datetime.now(UTC) - timedelta(minutes=5),
                author=ATTENDANT_1,
                reason="uji / test",
            )
            s.commit()
        return "bs-rijali"

    def day(self) -> str:
        """A local day of bank 1 later than any closed before, long past: its date."""
        return (date(2020, 1, 1) + timedelta(days=next(self.seq))).isoformat()

    def closed_day(self) -> str:
        """:meth:`day`, closed: bank 1's latest close."""
        day = self.day()
        with Session(self.engine) as s:
            ledger.close_day(
                s, BANK_1, date.fromisoformat(day), counted_cash_idr=0, author=ATTENDANT_1
            )
            s.commit()
        return day

    def withdrawal(self, *, approved: bool = False) -> int:
        """A fresh withdrawal request of A's for Rp10,000 (bank 1's minimum): its id."""
        with Session(self.engine) as s:
            w = ledger.request_withdrawal(
                s, MEMBER_A, 10_000, "cash", requested_by=f"nasabah:{MEMBER_A}"
            )
            if approved:
                ledger.approve_withdrawal(s, w.id, author=ATTENDANT_1)
            s.commit()
            return w.id


@dataclass(frozen=True)
class Case:
    """Who may make ``build``'s request, and what they get.

    ``readers``: for a route about one member, deposit or withdrawal, the roles that may read
    it; refusing one of them is 403, refusing anyone else 404. None: every refusal is 403.
    """

    build: Callable[[Env, str], Req]
    ok: frozenset[str]
    status: int = 200
    readers: frozenset[str] | None = None
    auth: str = "bearer"  # bearer | cookie (the pages)
    fresh_session: bool = False  # a page session of its own (the request ends it: a logout)
    expect: Callable[[Any], None] | None = field(default=None, compare=False)


def get(url: str, **params: str) -> Callable[[Env, str], Req]:
    return lambda _env, _role: Req("GET", url, params=params or None)


def own_credentials(env: Env, role: str) -> dict[str, str]:
    """The role's own login form (anonymous: citizen A's), with the CSRF token."""
    username, secret = env.creds["citizen_a" if role == "anonymous" else role]
    return env.form(username=username, password=secret)


def fresh_token(env: Env, role: str) -> str:
    """A bearer token of the role's own, not the module's (revoking it ends it); anonymous:
    no token of ours."""
    if role == "anonymous":
        return "not-a-token"
    username, secret = env.creds[role]
    resp = env.client.post("/api/token", data={"username": username, "password": secret})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def later(env: Env) -> str:
    """A local time a month ahead, a minute apart per call (a price's effective_from)."""
    at = datetime.now(UTC) + timedelta(days=30, minutes=next(env.seq))
    return at.astimezone(WIT).strftime("%Y-%m-%dT%H:%M")


IMPORT_CSV = b"no_nasabah,nama,kode_bank,kelurahan\nMTX-IMP-1,Uji Impor,bs-batu-merah,Rijali\n"


MATRIX: dict[tuple[str, str], Case] = {
    # ---- public -------------------------------------------------------------------------------
    ("GET", "/openapi.json"): Case(get("/openapi.json"), EVERYONE),
    ("GET", "/docs"): Case(get("/docs"), EVERYONE),
    ("GET", "/docs/oauth2-redirect"): Case(get("/docs/oauth2-redirect"), EVERYONE),
    ("GET", "/redoc"): Case(get("/redoc"), EVERYONE),
    ("GET", "/health"): Case(get("/health"), EVERYONE),
    ("POST", "/api/token"): Case(
        lambda env, role: Req("POST", "/api/token", data=own_credentials(env, role)), EVERYONE
    ),
    ("GET", "/masuk"): Case(get("/masuk"), EVERYONE, auth="cookie"),
    ("POST", "/masuk"): Case(
        lambda env, role: Req("POST", "/masuk", data=own_credentials(env, role)),
        EVERYONE,
        status=303,
        auth="cookie",
    ),
    ("POST", "/keluar"): Case(
        lambda env, _role: Req("POST", "/keluar", data=env.form()),
        EVERYONE,
        status=303,
        auth="cookie",
        fresh_session=True,
    ),
    ("POST", "/api/token/revoke"): Case(
        lambda env, role: Req("POST", "/api/token/revoke", data={"token": fresh_token(env, role)}),
        EVERYONE,
    ),
    ("GET", "/api/banks"): Case(get("/api/banks"), EVERYONE),
    ("GET", "/api/banks/{bank_code}/prices"): Case(get(f"/api/banks/{BANK_1}/prices"), EVERYONE),
    ("GET", "/api/public/banks"): Case(get("/api/public/banks"), EVERYONE),
    ("GET", "/bank-sampah"): Case(get("/bank-sampah"), EVERYONE, auth="cookie"),
    # ---- signed in ----------------------------------------------------------------------------
    ("GET", "/api/me"): Case(get("/api/me"), SIGNED_IN),
    # ---- citizen A's account ------------------------------------------------------------------
    ("GET", "/api/members/{member_no}"): Case(
        get(f"/api/members/{MEMBER_A}"), A_READERS, readers=A_READERS
    ),
    ("PATCH", "/api/members/{member_no}"): Case(
        lambda _env, _role: Req("PATCH", f"/api/members/{MEMBER_A}", json={"rt": 1}),
        BANK1_ACTORS,
        readers=A_READERS,
    ),
    ("GET", "/api/members/{member_no}/balance"): Case(
        get(f"/api/members/{MEMBER_A}/balance"), A_READERS, readers=A_READERS
    ),
    ("GET", "/api/members/{member_no}/transactions"): Case(
        get(f"/api/members/{MEMBER_A}/transactions"), A_READERS, readers=A_READERS
    ),
    ("GET", "/api/members/{member_no}/withdrawals"): Case(
        get(f"/api/members/{MEMBER_A}/withdrawals"), A_READERS, readers=A_READERS
    ),
    ("POST", "/api/members/{member_no}/withdrawals"): Case(
        lambda _env, _role: Req(
            "POST", f"/api/members/{MEMBER_A}/withdrawals", json={"amount_idr": 10_000}
        ),
        frozenset({"citizen_a", "attendant_1"}),
        status=201,
        readers=A_READERS,
    ),
    ("GET", "/api/members/{member_no}/export"): Case(
        get(f"/api/members/{MEMBER_A}/export"),
        frozenset({"citizen_a", "admin"}),
        readers=A_READERS,
    ),
    ("GET", "/api/members/{member_no}/statement"): Case(
        get(f"/api/members/{MEMBER_A}/statement", format="csv"),
        PERSONAL_A,
        readers=A_READERS,
    ),
    ("GET", "/api/receipts"): Case(
        lambda env, _role: Req("GET", "/api/receipts", params={"event_id": env.deposit()}),
        PERSONAL_A,
        readers=A_READERS,
    ),
    ("GET", "/nasabah/{member_no}"): Case(
        get(f"/nasabah/{MEMBER_A}"),
        PERSONAL_A,
        readers=frozenset(),
        auth="cookie",
    ),
    ("POST", "/nasabah/{member_no}/penarikan"): Case(
        lambda env, _role: Req(
            "POST", f"/nasabah/{MEMBER_A}/penarikan", data=env.form(amount_idr="10000")
        ),
        frozenset({"citizen_a", "attendant_1"}),
        status=303,
        readers=A_READERS,
        auth="cookie",
    ),
    ("GET", "/nasabah/{member_no}/buku-tabungan"): Case(
        get(f"/nasabah/{MEMBER_A}/buku-tabungan", format="csv"),
        PERSONAL_A,
        readers=frozenset(),
        auth="cookie",
    ),
    ("POST", "/api/deposits/{event_id}/void"): Case(
        lambda env, _role: Req(
            "POST", f"/api/deposits/{env.deposit()}/void", json={"reason": "salah / wrong"}
        ),
        BANK1_STAFF,
        readers=A_READERS,
    ),
    ("POST", "/api/deposits/{event_id}/correct"): Case(
        lambda env, _role: Req(
            "POST",
            f"/api/deposits/{env.deposit()}/correct",
            json={"reason": "salah timbang / misweighed", "net_g": 900},
        ),
        BANK1_STAFF,
        readers=A_READERS,
    ),
    ("POST", "/api/withdrawals/{withdrawal_id}/approve"): Case(
        lambda env, _role: Req("POST", f"/api/withdrawals/{env.withdrawal()}/approve"),
        BANK1_ACTORS,
        readers=A_READERS,
    ),
    ("POST", "/api/withdrawals/{withdrawal_id}/reject"): Case(
        lambda env, _role: Req(
            "POST", f"/api/withdrawals/{env.withdrawal()}/reject", json={"reason": "uji / test"}
        ),
        BANK1_ACTORS,
        readers=A_READERS,
    ),
    ("POST", "/api/withdrawals/{withdrawal_id}/pay"): Case(
        lambda env, _role: Req(
            "POST", f"/api/withdrawals/{env.withdrawal(approved=True)}/pay", json={}
        ),
        BANK1_ACTORS,
        readers=A_READERS,
    ),
    ("POST", "/api/withdrawals/{withdrawal_id}/cancel"): Case(
        lambda env, _role: Req("POST", f"/api/withdrawals/{env.withdrawal()}/cancel", json={}),
        BANK1_ACTORS | {"citizen_a"},
        readers=A_READERS,
    ),
    # ---- bank 1 -------------------------------------------------------------------------------
    ("GET", "/api/banks/{bank_code}/members"): Case(
        get(f"/api/banks/{BANK_1}/members"), BANK1_READERS
    ),
    ("POST", "/api/banks/{bank_code}/members"): Case(
        lambda env, _role: Req(
            "POST",
            f"/api/banks/{BANK_1}/members",
            json={"member_no": f"MTX-{next(env.seq):04d}", "name": "Uji", "kelurahan": "Rijali"},
        ),
        BANK1_ACTORS,
        status=201,
    ),
    ("GET", "/api/banks/{bank_code}/members/next-no"): Case(
        get(f"/api/banks/{BANK_1}/members/next-no"), BANK1_ACTORS
    ),
    # a member of bank 1 of the cell's own, with no login (resetting A's would end A's tokens)
    ("POST", "/api/members/{member_no}/pin"): Case(
        lambda env, _role: Req("POST", f"/api/members/{env.member()}/pin", json={}),
        BANK1_ACTORS,
        readers=BANK1_READERS,
    ),
    ("POST", "/api/members/{member_no}/cards"): Case(
        lambda env, _role: Req(
            "POST", f"/api/members/{env.member()}/cards", json={"uid": f"CAFE{next(env.seq):04X}"}
        ),
        BANK1_ACTORS,
        status=201,
        readers=BANK1_READERS,
    ),
    ("PUT", "/api/banks/{bank_code}/prices/{category_code}"): Case(
        lambda env, _role: Req(
            "PUT",
            f"/api/banks/{BANK_1}/prices/pet",
            json={
                "price_idr": 4100,
                "effective_from": (
                    datetime.now(UTC) + timedelta(days=30, minutes=next(env.seq))
                ).isoformat(),
            },
        ),
        BANK1_ACTORS,
    ),
    ("POST", "/api/banks/{bank_code}/deposits"): Case(
        lambda _env, _role: Req(
            "POST",
            f"/api/banks/{BANK_1}/deposits",
            json={
                "member_no": MEMBER_A,
                "category": "pet",
                "net_g": 1500,
                "reason": "timbangan rusak / scale down",
            },
        ),
        BANK1_STAFF,
        status=201,
    ),
    ("GET", "/api/banks/{bank_code}/withdrawals"): Case(
        get(f"/api/banks/{BANK_1}/withdrawals"), BANK1_READERS
    ),
    ("GET", "/api/banks/{bank_code}/gateway-logins"): Case(
        get(f"/api/banks/{BANK_1}/gateway-logins", username=ATTENDANT_1), BANK1_ACTORS
    ),
    ("GET", "/api/banks/{bank_code}/stock"): Case(get(f"/api/banks/{BANK_1}/stock"), BANK1_READERS),
    # what the ledger made of deposits, by event id (the gateway's receipts)
    ("GET", "/api/banks/{bank_code}/deposits"): Case(
        lambda env, _role: Req(
            "GET", f"/api/banks/{BANK_1}/deposits", params={"event_id": env.deposit()}
        ),
        BANK1_READERS,
    ),
    ("GET", "/api/banks/{bank_code}/limits"): Case(
        get(f"/api/banks/{BANK_1}/limits"), BANK1_READERS
    ),
    ("GET", "/api/banks/{bank_code}/sales"): Case(get(f"/api/banks/{BANK_1}/sales"), BANK1_READERS),
    ("POST", "/api/banks/{bank_code}/sales"): Case(
        lambda _env, _role: Req(
            "POST",
            f"/api/banks/{BANK_1}/sales",
            json={
                "category": "pet",
                "grams": 100,
                "collector": "ud-galala-plastik",
                "revenue_idr": 900,
            },
        ),
        BANK1_STAFF,
        status=201,
    ),
    # ---- stock movements and the day (api/stock_moves.py, api/day.py) --------------------------
    ("GET", "/api/banks/{bank_code}/collectors"): Case(
        get(f"/api/banks/{BANK_1}/collectors"), BANK1_READERS
    ),
    ("GET", "/api/banks/{bank_code}/movements"): Case(
        get(f"/api/banks/{BANK_1}/movements"), BANK1_READERS
    ),
    # bank 1 is an induk: its unit Rijali delivers, from a deposit of the cell's own
    ("POST", "/api/banks/{bank_code}/transfers"): Case(
        lambda env, _role: Req(
            "POST",
            f"/api/banks/{env.rijali_stock()}/transfers",
            json={"category": "pet", "grams": 100},
        ),
        BANK1_STAFF,
        status=201,
    ),
    ("POST", "/api/banks/{bank_code}/residue"): Case(
        lambda _env, _role: Req(
            "POST", f"/api/banks/{BANK_1}/residue", json={"category": "pet", "grams": 100}
        ),
        BANK1_STAFF,
        status=201,
    ),
    ("GET", "/api/banks/{bank_code}/days/{day}"): Case(
        lambda _env, _role: Req("GET", f"/api/banks/{BANK_1}/days/{datetime.now(WIT).date()}"),
        BANK1_READERS,
    ),
    # each cell closes a day of its own, later than any closed before (one close a day)
    ("POST", "/api/banks/{bank_code}/days/{day}/close"): Case(
        lambda env, _role: Req(
            "POST", f"/api/banks/{BANK_1}/days/{env.day()}/close", json={"counted_cash_idr": 0}
        ),
        BANK1_ACTORS,
        status=201,
    ),
    ("POST", "/api/banks/{bank_code}/days/{day}/reopen"): Case(
        lambda env, _role: Req(
            "POST", f"/api/banks/{BANK_1}/days/{env.closed_day()}/reopen", json={"reason": "uji"}
        ),
        frozenset({"admin"}),
    ),
    # ---- the city and the system --------------------------------------------------------------
    ("GET", "/api/tonnage"): Case(
        get("/api/tonnage", start="2026-11-01", end="2026-11-30"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/tps/latest"): Case(get("/api/tps/latest"), frozenset({"dlh", "admin"})),
    ("GET", "/api/dlh/tonnage"): Case(
        get("/api/dlh/tonnage", group="kelurahan", period="week", **{"from": "2026-11-01"}),
        frozenset({"dlh", "admin"}),
    ),
    ("GET", "/api/dlh/reduction"): Case(
        get("/api/dlh/reduction", year="2026"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/dlh/diversion"): Case(
        get("/api/dlh/diversion", **{"from": "2026-11-01", "to": "2026-11-02"}),
        frozenset({"dlh", "admin"}),
    ),
    ("GET", "/api/dlh/report/monthly"): Case(
        get("/api/dlh/report/monthly", month="2026-10", format="csv"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/dlh/estimates"): Case(
        get("/api/dlh/estimates", month="2026-10"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/dlh/wte-scenario"): Case(
        get("/api/dlh/wte-scenario", tonnes_per_day="500"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/dlh/report/sipsn"): Case(
        get("/api/dlh/report/sipsn", period="2026-S2", format="csv"), frozenset({"dlh", "admin"})
    ),
    ("GET", "/api/tps"): Case(get("/api/tps"), frozenset({"dlh", "admin"})),
    ("GET", "/api/tps/alerts"): Case(get("/api/tps/alerts"), frozenset({"dlh", "admin"})),
    ("GET", "/api/tps/{code}"): Case(get("/api/tps/tps-batu-merah"), frozenset({"dlh", "admin"})),
    ("GET", "/api/audit"): Case(get("/api/audit"), frozenset({"admin"})),
    ("GET", "/api/alerts"): Case(get("/api/alerts"), frozenset({"admin"})),
    ("GET", "/api/fleet"): Case(get("/api/fleet"), frozenset({"dlh", "admin"})),
    # ---- the pages for DLH staff and admins ---------------------------------------------------
    ("GET", "/dlh"): Case(get("/dlh"), frozenset({"dlh", "admin"}), auth="cookie"),
    ("GET", "/armada"): Case(get("/armada"), frozenset({"dlh", "admin"}), auth="cookie"),
    ("GET", "/dlh/pltsa"): Case(
        get("/dlh/pltsa", tonnes_per_day="500"), frozenset({"dlh", "admin"}), auth="cookie"
    ),
    ("GET", "/dlh/laporan"): Case(
        get("/dlh/laporan", month="2026-10", format="csv"),
        frozenset({"dlh", "admin"}),
        auth="cookie",
    ),
    ("GET", "/admin"): Case(get("/admin"), frozenset({"admin"}), auth="cookie"),
    ("GET", "/admin/harga/{bank_code}"): Case(
        get(f"/admin/harga/{BANK_1}"), frozenset({"admin"}), auth="cookie"
    ),
    ("POST", "/admin/harga/{bank_code}"): Case(
        lambda env, _role: Req(
            "POST",
            f"/admin/harga/{BANK_1}",
            data=env.form(category_code="pet", price_idr="4200", effective_from=later(env)),
        ),
        frozenset({"admin"}),
        status=303,
        auth="cookie",
    ),
    ("GET", "/admin/impor"): Case(get("/admin/impor"), frozenset({"admin"}), auth="cookie"),
    ("POST", "/admin/impor"): Case(
        lambda env, _role: Req(
            "POST",
            "/admin/impor",
            data=env.form(dry_run="true"),
            files={"file": ("anggota.csv", IMPORT_CSV, "text/csv")},
        ),
        frozenset({"admin"}),
        auth="cookie",
    ),
    ("GET", "/admin/perangkat"): Case(get("/admin/perangkat"), frozenset({"admin"}), auth="cookie"),
    ("POST", "/admin/perangkat"): Case(
        lambda env, _role: Req(
            "POST",
            "/admin/perangkat",
            data=env.form(kind="sensor", site="tps-batu-merah", device_id=f"us-m{next(env.seq)}"),
        ),
        frozenset({"admin"}),
        auth="cookie",
    ),
}


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route, those of included routers too."""
    return routes_of(create_app(api_settings()))


def routes_of(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of ``app``, those of included routers too."""
    routes: Sequence[Any] = app.routes
    try:  # FastAPI >= 0.16x keeps included routers whole; older ones copy their routes in
        from fastapi.routing import iter_route_contexts
    except ImportError:
        pass
    else:
        routes = list(iter_route_contexts(app.routes))
    return {
        (method, route.path)
        for route in routes
        for method in (getattr(route, "methods", None) or ())
        if method != "HEAD"
    }


def test_every_route_is_in_the_matrix() -> None:
    routes = app_routes()
    assert routes - set(MATRIX) == set(), "routes without a matrix entry: add them to MATRIX"
    assert set(MATRIX) - routes == set(), "matrix entries for routes the app does not have"


@pytest.fixture(scope="module")
def env(
    ledger_factory: LedgerFactory,
    running_services: services.ServicesSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Env]:
    """One ledger (per backend), the app on it, everyone signed in; an InfluxDB database of its
    own for the DLH reads."""
    url = ledger_factory.new()
    influx = services.influx_admin_settings(
        running_services, f"test_matrix_{uuid.uuid4().hex[:10]}"
    )
    asyncio.run(_influx(influx, create=True))
    settings = api_settings(
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        ledger_url=url,
        # the broker's device files of a run dir of the module's own (no broker runs there)
        pages=PagesSettings(broker_run_dir=tmp_path_factory.mktemp("broker-run")),
    )
    try:
        with Env(url, settings) as made:
            yield made
    finally:
        asyncio.run(_influx(influx, create=False))
        ledger_factory.drop(url)


async def _influx(settings: InfluxSettings, *, create: bool) -> None:
    influx = Influx(settings)
    try:
        await (influx.ensure_database() if create else influx.drop_database())
    finally:
        await influx.aclose()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", sorted(MATRIX), ids=" ".join)
def test_cell(env: Env, route: tuple[str, str], role: str) -> None:
    case = MATRIX[route]
    req = case.build(env, role)
    headers: dict[str, str] = {"User-Agent": "authz-matrix"}
    if case.auth == "cookie":  # the page session and the CSRF cookie; the form's token theirs
        cookie = env.cookie(None if role == "anonymous" else role, fresh=case.fresh_session)
        headers |= cookie
        if req.data and "csrf_token" in req.data and role != "anonymous":
            req = dataclasses.replace(req, data={**req.data, "csrf_token": env.csrf_for(cookie)})
    elif role != "anonymous":
        headers |= env.bearer(role)
    resp = env.client.request(
        req.method,
        req.url,
        json=req.json,
        data=req.data,
        params=req.params,
        files=req.files,
        headers=headers,
    )
    env.client.cookies.clear()  # a login cell's cookie must not follow into the next cell
    assert resp.status_code < 500, resp.text
    if role in case.ok:
        assert resp.status_code == case.status, f"{role} refused: {resp.status_code} {resp.text}"
    elif role == "anonymous" and case.auth == "cookie":
        assert resp.status_code == 303, resp.text
        assert resp.headers["location"].startswith("/masuk?next=")
    elif role == "anonymous":
        assert resp.status_code == 401, resp.text
        assert resp.headers["www-authenticate"] == "Bearer"
    else:
        readers = case.readers
        want = 403 if readers is None or role in readers else 404
        assert resp.status_code == want, f"{role}: {resp.status_code} {resp.text}"


# ---- the gateway's local endpoint ---------------------------------------------------------------
#
# Every route of `gateway.http.local_api.http_app` x three callers: no session; an attendant's
# session with its CSRF token; the same session with a wrong token. ``GATEWAY_MATRIX`` must name
# every route (:func:`test_every_gateway_route_is_in_the_matrix`).

GW_COLUMNS = ("no_session", "attendant", "wrong_csrf")


@dataclass(frozen=True)
class GwCase:
    """The request, and the status each column gets."""

    build: Callable[[GwEnv], Req]
    no_session: int
    attendant: int
    wrong_csrf: int


def gw_read(url: str, status: int = 200) -> GwCase:
    """A read: the session is enough (the token does not matter)."""
    return GwCase(lambda _env: Req("GET", url), 401, status, status)


def gw_write(build: Callable[[GwEnv], Req], status: int = 200) -> GwCase:
    return GwCase(build, 401, status, 403)


def gw_public(build: Callable[[GwEnv], Req], status: int = 200) -> GwCase:
    return GwCase(build, status, status, status)


GW_SCALE = "scale-01"
GW_ARM = {"member_no": MEMBER_A, "category_code": "pet"}


class GwEnv:
    """A gateway (not running: its scales fed by hand) with its attendant service, the central
    API faked at the transport seam, its local endpoint over httpx's ASGI transport."""

    def __init__(self, svc: AttendantService, client: httpx.AsyncClient) -> None:
        self.svc = svc
        self.client = client
        self.gw = svc.gw

    def stable_load(self) -> None:
        reader = self.gw.readers[GW_SCALE]
        for _ in range(2):
            self.gw.feed(reader, b"ST,GS,+0010.00kg\r\n")

    def deposit(self) -> str:
        """A deposit stored by this gateway's attendant scale: its event id."""
        reader = self.gw.readers[GW_SCALE]
        candidate = DepositCandidate(
            None, "pet", 1250, 0, True, "gs_nt", ("x",), member_no=MEMBER_A
        )
        seq = self.gw.recorder.store_deposit(reader, candidate)
        assert seq is not None  # stored, not refused as an invalid event
        return str(self.gw.event_id(seq))

    def withdrawal(self, wid: int) -> int:
        """FakeCentral's withdrawals in the gateway's copy (as the page's list leaves them)."""
        now = datetime.now(UTC)
        rows = [withdrawal_row(w, now) for w in FakeCentral().withdrawal_rows.values()]
        self.svc.db.withdrawals.replace(rows, now)
        return wid

    def printer_and_deposit(self) -> str:
        """A receipt printer (a file beside the outbox) and a deposit to print: its event id."""
        device = self.gw.settings.outbox.path.parent / "lp0"
        device.touch()
        self.gw.settings.printer = PrinterSettings(kind="file", path=device)
        return self.deposit()

    def card(self) -> str:
        """A card of member A's in the gateway's directory: its UID."""
        self.svc.db.directory.replace_members(
            BANK_1,
            [MemberEntry(MEMBER_A, "Siti", "individual", ("04A1B2C3D4",))],
            datetime.now(UTC),
        )
        return "04A1B2C3D4"


def _calibration(env: GwEnv) -> Req:
    """A calibration, the scale steady under its 10 kg reference."""
    env.stable_load()
    return Req("POST", f"/scales/{GW_SCALE}/calibration", json={"reference_g": 10_000})


def _live_of_a_stopping_gateway(env: GwEnv) -> Req:
    """The stream: the gateway is stopping, so it ends at once (the status is what counts)."""
    env.gw.live.stop()
    return Req("GET", f"/petugas/api/scales/{GW_SCALE}/live")


GATEWAY_MATRIX: dict[tuple[str, str], GwCase] = {
    # ---- open without a session: the minimal health, the page, its script, logins, logout ---
    ("GET", "/health"): gw_public(lambda _env: Req("GET", "/health")),
    ("GET", "/petugas"): gw_public(lambda _env: Req("GET", "/petugas")),
    ("GET", "/petugas/static/{name}"): gw_public(
        lambda _env: Req("GET", "/petugas/static/members.js")
    ),
    ("POST", "/petugas/masuk"): GwCase(  # with the token of the login page (see the cell)
        lambda _env: Req(
            "POST",
            "/petugas/masuk",
            data={"username": "petugas-bm-01", "password": "kata-sandi", "csrf_token": "?"},
        ),
        303,
        303,
        403,
    ),
    ("POST", "/petugas/keluar"): GwCase(
        lambda _env: Req("POST", "/petugas/keluar", data={"csrf_token": "?"}), 303, 303, 403
    ),
    ("POST", "/petugas/api/session"): gw_public(
        lambda _env: Req(
            "POST",
            "/petugas/api/session",
            json={"username": "petugas-bm-01", "password": "kata-sandi"},
        )
    ),
    # ---- the session ----------------------------------------------------------------------------
    ("DELETE", "/petugas/api/session"): gw_write(
        lambda _env: Req("DELETE", "/petugas/api/session"), 204
    ),
    ("GET", "/health/full"): gw_read("/health/full"),
    ("GET", "/scales"): gw_read("/scales"),
    ("GET", "/scales/{scale_id}/frames"): gw_read(f"/scales/{GW_SCALE}/frames"),
    ("POST", "/scales/{scale_id}/arm"): gw_write(
        lambda _env: Req("POST", f"/scales/{GW_SCALE}/arm", json=GW_ARM)
    ),
    ("POST", "/scales/{scale_id}/cancel"): gw_write(
        lambda _env: Req("POST", f"/scales/{GW_SCALE}/cancel")
    ),
    ("POST", "/scales/{scale_id}/calibration"): gw_write(_calibration),
    ("GET", "/scales/{scale_id}/calibration"): gw_read(f"/scales/{GW_SCALE}/calibration"),
    ("GET", "/petugas/api/status"): gw_read("/petugas/api/status"),
    ("GET", "/petugas/api/state"): gw_read("/petugas/api/state"),
    ("GET", "/petugas/api/members"): gw_read("/petugas/api/members?q=AMB"),
    ("GET", "/petugas/api/cards/{uid}"): GwCase(
        lambda env: Req("GET", f"/petugas/api/cards/{env.card()}"), 401, 200, 200
    ),
    ("POST", "/petugas/api/scales/{scale_id}/record"): gw_write(
        lambda _env: Req("POST", f"/petugas/api/scales/{GW_SCALE}/record", json=GW_ARM)
    ),
    ("POST", "/petugas/api/scales/{scale_id}/cancel"): gw_write(
        lambda _env: Req("POST", f"/petugas/api/scales/{GW_SCALE}/cancel")
    ),
    ("GET", "/petugas/api/scales/{scale_id}/live"): GwCase(
        _live_of_a_stopping_gateway, 401, 200, 200
    ),
    ("GET", "/petugas/api/deposits"): gw_read("/petugas/api/deposits"),
    # members at the bank (the central API's answers: tests/gateway_helpers.py FakeCentral.desk)
    ("GET", "/petugas/nasabah"): gw_read("/petugas/nasabah"),
    ("GET", "/petugas/api/members/next-no"): gw_read("/petugas/api/members/next-no"),
    ("POST", "/petugas/api/members"): gw_write(
        lambda _env: Req(
            "POST", "/petugas/api/members", json={"member_no": "AMB-0099", "name": "U"}
        ),
        201,
    ),
    ("POST", "/petugas/api/members/{member_no}/cards"): gw_write(
        lambda _env: Req("POST", "/petugas/api/members/AMB-0099/cards", json={"uid": "0A0B0C0D"})
    ),
    ("GET", "/petugas/api/members/{member_no}/sms"): gw_read("/petugas/api/members/AMB-0099/sms"),
    ("PUT", "/petugas/api/members/{member_no}/sms"): gw_write(
        lambda _env: Req("PUT", "/petugas/api/members/AMB-0099/sms", json={"sms_opt_in": True})
    ),
    ("POST", "/petugas/api/members/{member_no}/pin"): gw_write(
        lambda _env: Req("POST", "/petugas/api/members/AMB-0099/pin", json={})
    ),
    ("POST", "/petugas/api/sync"): gw_write(lambda _env: Req("POST", "/petugas/api/sync")),
    # withdrawals (FakeCentral.withdrawals: 1 requested, 2 approved)
    ("GET", "/petugas/penarikan"): gw_read("/petugas/penarikan"),
    ("GET", "/petugas/api/withdrawals"): gw_read("/petugas/api/withdrawals"),
    ("POST", "/petugas/api/withdrawals/{withdrawal_id}/approve"): gw_write(
        lambda env: Req("POST", f"/petugas/api/withdrawals/{env.withdrawal(1)}/approve", json={})
    ),
    ("POST", "/petugas/api/withdrawals/{withdrawal_id}/reject"): gw_write(
        lambda env: Req(
            "POST", f"/petugas/api/withdrawals/{env.withdrawal(1)}/reject", json={"reason": "x"}
        )
    ),
    ("POST", "/petugas/api/withdrawals/{withdrawal_id}/pay"): gw_write(
        lambda env: Req("POST", f"/petugas/api/withdrawals/{env.withdrawal(2)}/pay", json={})
    ),
    # stock and the day (FakeCentral.stock_and_day)
    ("GET", "/petugas/stok"): gw_read("/petugas/stok"),
    ("GET", "/petugas/api/stock"): gw_read("/petugas/api/stock"),
    ("POST", "/petugas/api/stock/sales"): gw_write(
        lambda _env: Req(
            "POST",
            "/petugas/api/stock/sales",
            json={
                "key": f"k{uuid.uuid4().hex}",
                "collector": "ud-galala-plastik",
                "category": "pet",
                "grams": 1000,
                "price_per_kg_idr": 4500,
            },
        ),
        201,
    ),
    ("POST", "/petugas/api/stock/transfers"): gw_write(
        lambda _env: Req(
            "POST",
            "/petugas/api/stock/transfers",
            json={"key": f"k{uuid.uuid4().hex}", "category": "pet", "grams": 1000},
        ),
        201,
    ),
    ("POST", "/petugas/api/stock/residue"): gw_write(
        lambda _env: Req(
            "POST",
            "/petugas/api/stock/residue",
            json={"key": f"k{uuid.uuid4().hex}", "category": "pet", "grams": 1000},
        ),
        201,
    ),
    ("GET", "/petugas/hari-ini"): gw_read("/petugas/hari-ini"),
    ("GET", "/petugas/api/day"): gw_read("/petugas/api/day"),
    ("POST", "/petugas/api/day/close"): gw_write(
        lambda _env: Req(
            "POST", "/petugas/api/day/close", json={"date": "2026-12-06", "counted_cash_idr": 0}
        ),
        201,
    ),
    ("POST", "/petugas/api/deposits/{event_id}/void"): gw_write(
        lambda env: Req(
            "POST", f"/petugas/api/deposits/{env.deposit()}/void", json={"reason": "salah"}
        )
    ),
    # receipts (gateway/receipts.py): a deposit's, printed on a file printer in the test's dir
    ("GET", "/petugas/struk/{kind}/{ref}"): GwCase(
        lambda env: Req("GET", f"/petugas/struk/setoran/{env.deposit()}"), 401, 200, 200
    ),
    ("GET", "/petugas/api/struk/{kind}/{ref}"): GwCase(
        lambda env: Req("GET", f"/petugas/api/struk/setoran/{env.deposit()}"), 401, 200, 200
    ),
    ("POST", "/petugas/api/struk/{kind}/{ref}/cetak"): gw_write(
        lambda env: Req("POST", f"/petugas/api/struk/setoran/{env.printer_and_deposit()}/cetak")
    ),
}


def gateway_routes(tmp_path: Path) -> set[tuple[str, str]]:
    gw = Gateway(gateway_settings(tmp_path))
    try:
        return routes_of(local_api.http_app(gw, AttendantService(gw)))
    finally:
        gw.outbox.close()


def test_every_gateway_route_is_in_the_matrix(tmp_path: Path) -> None:
    routes = gateway_routes(tmp_path)
    assert routes - set(GATEWAY_MATRIX) == set(), "gateway routes without a GATEWAY_MATRIX entry"
    assert set(GATEWAY_MATRIX) - routes == set(), "GATEWAY_MATRIX entries the gateway lacks"


@pytest.mark.parametrize("column", GW_COLUMNS)
@pytest.mark.parametrize("route", sorted(GATEWAY_MATRIX), ids=" ".join)
def test_gateway_cell(tmp_path: Path, route: tuple[str, str], column: str) -> None:
    asyncio.run(_gateway_cell(tmp_path, GATEWAY_MATRIX[route], column))


async def _gateway_cell(
    tmp_path: Path,
    case: GwCase,
    column: str,
    method: str = "",
    as_form: bool = False,
    unread: bool = False,
) -> None:
    """The cell's request as ``column``; ``method`` instead of its own (HEAD); ``as_form``:
    its JSON body sent as a form with the CSRF token in it (422 expected, but where the
    request has no JSON body or the route leaves it ``unread``)."""
    async with attendant_service(gateway_settings(tmp_path), FakeCentral()) as svc:
        app = local_api.http_app(svc.gw, svc)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            # the login form's token (bound to its nonce cookie), from the page signed out
            page = await client.get("/petugas")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found is not None
            login_token = found[1] if column != "wrong_csrf" else "x" * 64
            token = ""
            if column != "no_session":
                resp = await client.post(
                    "/petugas/api/session",
                    json={"username": "petugas-bm-01", "password": "kata-sandi"},
                )
                assert resp.status_code == 200, resp.text
                token = resp.json()["csrf_token"] if column == "attendant" else "x" * 64
            env = GwEnv(svc, client)
            req = case.build(env)
            if req.url == "/petugas/masuk":
                req = dataclasses.replace(req, data={**(req.data or {}), "csrf_token": login_token})
            elif req.data is not None and "csrf_token" in req.data:
                req = dataclasses.replace(req, data={**req.data, "csrf_token": token})
            headers = {"X-CSRF-Token": token} if token else {}
            want = getattr(case, column)
            if as_form:
                want = want if req.json is None or unread else 422
                fields = {k: str(v) for k, v in (req.json or {}).items()}
                req = dataclasses.replace(
                    req, json=None, data={**fields, **(req.data or {}), "csrf_token": token}
                )
                headers = {}
            resp = await client.request(
                method or req.method, req.url, json=req.json, data=req.data, headers=headers
            )
            assert resp.status_code == want, f"{column}: {resp.status_code} {resp.text[:300]}"
            if method == "HEAD":
                assert resp.content == b""


GW_NO_TOKEN: dict[tuple[str, str], str] = {
    ("POST", "/petugas/api/session"): "a login in JSON: a cross-site form cannot send JSON, and "
    "a text/plain body is not read as JSON (test_gateway_attendant_hardening)",
}
"""The gateway's writes that take no session's CSRF token, and why; every other one does."""


def test_every_gateway_write_needs_its_csrf_token() -> None:
    writes = {route for route in GATEWAY_MATRIX if route[0] != "GET"}
    unguarded = {route for route in writes if GATEWAY_MATRIX[route].wrong_csrf != 403}
    assert unguarded == set(GW_NO_TOKEN), "a write taken with a wrong CSRF token"


@pytest.mark.parametrize("column", ["no_session", "attendant"])
@pytest.mark.parametrize("route", sorted(r for r in GATEWAY_MATRIX if r[0] == "GET"), ids=" ".join)
def test_gateway_head(tmp_path: Path, route: tuple[str, str], column: str) -> None:
    """HEAD on every GET route: GET's status (the session gate applies alike), no body."""
    asyncio.run(_gateway_cell(tmp_path, GATEWAY_MATRIX[route], column, method="HEAD"))


@pytest.mark.parametrize(
    "route",
    sorted(
        r
        for r, case in GATEWAY_MATRIX.items()
        if r[0] != "GET" and case.wrong_csrf == 403 and r != ("POST", "/petugas/masuk")
    ),
    ids=" ".join,
)
def test_gateway_json_write_refuses_a_form(tmp_path: Path, route: tuple[str, str]) -> None:
    """A write sent as a form post with the session's token in the form: a JSON write refuses
    it (422, nothing done), a write without a body (or a form's) takes the token from it. (The
    login form's token is its own: the matrix's cells.)"""
    unread = route in GW_NO_BODY
    asyncio.run(
        _gateway_cell(tmp_path, GATEWAY_MATRIX[route], "attendant", as_form=True, unread=unread)
    )


GW_NO_BODY: frozenset[tuple[str, str]] = frozenset(
    {("POST", "/petugas/api/withdrawals/{withdrawal_id}/approve")}
)
"""Writes whose matrix request carries ``json={}`` that the route never reads."""
