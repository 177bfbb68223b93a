"""Each kind of receipt belongs to its page's tab: its receipt page (gateway/receipts.py,
``register(kind, loader, nav=...)``) highlights that tab in the frame's nav and its "Kembali /
Back" link goes to that page, also when the receipt cannot be shown (an unknown reference).

The gateway's app is the real one over httpx's ASGI transport; the central API is faked at the
transport seam (tests/gateway_helpers.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gateway import receipts
from gateway.central import withdrawal_row
from gateway.http import local_api
from gateway.http.attendant import AttendantService
from tests.gateway_helpers import PASSWORD, FakeCentral, attendant_service, gateway_settings

Gw = tuple[AttendantService, httpx.AsyncClient]

# the tab each kind's receipt belongs to: a new kind of receipt is added here with its tab
NAV_OF_KIND = {
    "setoran": ("timbang", "/petugas"),  # a deposit: the weighing page
    "penarikan": ("penarikan", "/petugas/penarikan"),  # a withdrawal
    "pin": ("nasabah", "/petugas/nasabah"),  # a member's PIN slip
    "penjualan": ("stok", "/petugas/stok"),  # a sale to a pengepul
    "hari": ("hari", "/petugas/hari-ini"),  # the day sheet
}
CURRENT = re.compile(r'<a [^>]*data-nav="([a-z]+)"[^>]*aria-current="page"')
BACK = re.compile(r'<a class="button" href="([^"]+)">Kembali / Back</a>')


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    async with attendant_service(gateway_settings(tmp_path), FakeCentral()) as svc:
        transport = httpx.ASGITransport(app=local_api.http_app(svc.gw, svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
            yield svc, client


def tab_and_back(html: str) -> tuple[list[str], list[str]]:
    return CURRENT.findall(html), BACK.findall(html)


def test_every_kind_registered_has_its_tab_here() -> None:
    # tests/test_receipts.py registers kinds of its own (uji-...) in the same process
    assert {k for k in receipts.kinds() if not k.startswith("uji-")} == set(NAV_OF_KIND)
    for kind, (nav, page) in NAV_OF_KIND.items():
        assert receipts.nav_of(kind) == nav, kind
        assert receipts.NAV_PAGES[nav] == page


@pytest.mark.parametrize("kind", sorted(NAV_OF_KIND))
async def test_a_receipt_page_not_found_stays_in_its_tab(gateway: Gw, kind: str) -> None:
    _, client = gateway
    page = await client.get(f"/petugas/struk/{kind}/9999999")
    assert page.status_code == 404, page.text[:300]
    nav, back = NAV_OF_KIND[kind]
    assert tab_and_back(page.text) == ([nav], [back])


async def test_a_withdrawal_receipt_and_a_pin_slip_are_in_their_tabs(gateway: Gw) -> None:
    svc, client = gateway
    now = datetime.now(UTC)
    svc.db.withdrawals.replace(
        [withdrawal_row(w, now) for w in FakeCentral().withdrawal_rows.values()], now
    )
    page = await client.get("/petugas/struk/penarikan/1")
    assert page.status_code == 200, page.text[:300]
    assert 'data-kind="penarikan"' in page.text
    assert tab_and_back(page.text) == (["penarikan"], ["/petugas/penarikan"])

    issued = await client.post("/petugas/api/members/AMB-0099/pin", json={})
    assert issued.status_code == 200, issued.text
    page = await client.get(issued.json()["slip_url"])
    assert page.status_code == 200, page.text[:300]
    assert 'data-kind="pin"' in page.text
    assert tab_and_back(page.text) == (["nasabah"], ["/petugas/nasabah"])
