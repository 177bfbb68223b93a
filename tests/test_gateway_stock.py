"""The stock page's movements at the gateway (gateway/http/attendant/stock.py): kept under the
page's key before they are sent, queued while the central API cannot be reached, sent once when
it answers again (the key as the central API's idempotency key), never twice; closing a day is
online only. The central API is the fake at the transport seam (tests/gateway_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.http import local_api
from gateway.http.attendant import AttendantService
from gateway.http.attendant.stock import send_due
from gateway.http.validation import REFUSED
from tests.gateway_helpers import PASSWORD, FakeCentral, attendant_service, gateway_settings

Gw = tuple[AttendantService, FakeCentral, httpx.AsyncClient, dict[str, str]]
SALE = {
    "key": "a1b2c3d4e5f6a7b8",
    "collector": "ud-galala-plastik",
    "category": "pet",
    "grams": 4_250,
    "price_per_kg_idr": 4_500,
}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc:
        app = local_api.http_app(svc.gw, svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client:
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            yield svc, fake, client, {"X-CSRF-Token": resp.json()["csrf_token"]}


async def test_a_sale_asked_offline_is_queued_then_sent_once(gateway: Gw) -> None:
    svc, fake, client, csrf = gateway
    fake.down = True
    first = await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)
    assert first.status_code == 202, first.text
    assert first.json()["state_text"] == "antri / queued"
    assert first.json()["revenue_idr"] == 19_125  # 4,25 kg x Rp4.500, the ledger's rounding
    again = await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)
    assert again.status_code == 202, again.text  # the page's retry: the same record
    assert svc.db.stock.pending() == 1
    receipt = await client.get(f"/petugas/api/struk/penjualan/{SALE['key']}")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["title"].startswith("ANTRI")

    fake.down = False
    assert await send_due(svc) is False  # nothing left waiting
    ((path, sent),) = fake.stock_moves
    assert path == "sales"
    assert sent["idempotency_key"] == f"{svc.gw.settings.gateway_id}.{SALE['key']}"
    assert (sent["grams"], sent["revenue_idr"], sent["payment_method"]) == (4_250, 19_125, "cash")
    assert sent["at"]  # when it was sold, not when it was sent
    done = await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)
    assert done.status_code == 201, done.text
    assert done.json()["ledger_id"] == 1
    assert len(fake.stock_moves) == 1  # never sent twice
    listed = (await client.get("/petugas/api/stock")).json()
    assert [(m["key"], m["state"]) for m in listed["moves"]] == [(SALE["key"], "sent")]


async def test_bad_input_is_refused_in_indonesian_first(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    for body in (
        {**SALE, "grams": 0},
        {**SALE, "key": "short"},
        {**SALE, "payment_method": "utang"},
        {**SALE, "price_per_kg_idr": "1e5"},
    ):
        resp = await client.post("/petugas/api/stock/sales", json=body, headers=csrf)
        assert resp.status_code == 422, (body, resp.text)
        assert isinstance(resp.json()["detail"], str), resp.text
    assert fake.stock_moves == []


async def test_closing_a_day_needs_the_central_api(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    fake.down = True
    resp = await client.post(
        "/petugas/api/day/close", json={"date": "2026-12-06", "counted_cash_idr": 0}, headers=csrf
    )
    assert resp.status_code == 503, resp.text
    assert resp.json()["detail"].startswith("Tutup hari perlu internet")


async def test_the_days_bad_query_is_refused_field_by_field(gateway: Gw) -> None:
    _, _, client, _ = gateway
    before = REFUSED["/petugas/api/day"]
    resp = await client.get(
        "/petugas/api/day", params={"date": "6-12-2026", "opening_cash_idr": -1}
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"] == [
        {"field": "date", "message": "tanggal tidak sah / date is not valid"},
        {
            "field": "opening_cash_idr",
            "message": "saldo awal minimal 0 / opening cash at least 0",
        },
    ]
    assert REFUSED["/petugas/api/day"] == before + 1  # one request, counted under its route
    resp = await client.get("/petugas/api/day", params={"date": "2026-12-06"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["sheet_url"] == "/petugas/struk/hari/2026-12-06"
