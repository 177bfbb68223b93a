"""Money rules through the API (issue 13, part 5): a price or a manual deposit beyond its limit
is a 422 naming the limit, in both languages; a withdrawal above the second-approval amount
needs three different people, and every refused attempt is in the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from api.settings import ApiSettings
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, login, with_csrf
from tests.conftest import deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import access, ledger
from wastebank.money_rules import CityMoneyRules, MoneyRules, PriceRange

BM = "bs-batu-merah"
MEMBER = "AMB-0001"
RULES = MoneyRules(
    price_max_idr=50_000,
    category_prices={"aluminium": PriceRange(min_idr=1_000)},
    manual_max_g=10_000,
    manual_max_idr=30_000,
    second_approval_above_idr=50_000,
    scales={"gw-01/scale-01": 150_000},
    cities={"ambon": CityMoneyRules(manual_max_idr=35_000)},
)


async def _client(settings: ApiSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.10", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


@pytest.fixture
async def client(ledger_url: str) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ledger_url)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:  # Rp400,000 for AMB-0001, and two more petugas at the bank
            apply_deposit(s, deposit_event(1, net_g=100_000))
            bank = s.scalars(select(ledger.Bank).where(ledger.Bank.code == BM)).one()
            hasher = access.password_hasher(api_settings().auth)
            for staff_id in ("petugas-bm-02", "petugas-bm-03"):
                ledger.create_attendant(s, bank, staff_id, f"Petugas {staff_id}")
                access.add_user(
                    s,
                    role=access.Role.ATTENDANT,
                    secret=PASSWORD,
                    hasher=hasher,
                    actor=access.Actor("test", "cli"),
                    username=staff_id,
                )
            s.commit()
    finally:
        engine.dispose()
    async for c in _client(api_settings(ledger_url=ledger_url, money=RULES)):
        yield c


async def _staff(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    return await login(client, username, PASSWORD)


def _later(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(days=30, minutes=minutes)).isoformat()


async def test_a_price_beyond_its_limit_is_a_422_naming_the_limit(
    client: httpx.AsyncClient,
) -> None:
    petugas = await _staff(client, "petugas-bm-01")
    url = f"/api/banks/{BM}/prices/pet"
    at = await client.put(
        url, json={"price_idr": 50_000, "effective_from": _later(1)}, headers=petugas
    )
    assert at.status_code == 200, at.text
    past = await client.put(
        url, json={"price_idr": 50_001, "effective_from": _later(2)}, headers=petugas
    )
    assert past.status_code == 422
    detail = past.json()["detail"]
    assert detail.startswith("di luar batas wajar / beyond a plausibility limit: ")
    assert "di atas batas Rp50.000/kg (money.price_max_idr)" in detail
    assert "above the limit Rp50.000/kg (money.price_max_idr)" in detail
    low = await client.put(
        f"/api/banks/{BM}/prices/aluminium",
        json={"price_idr": 999, "effective_from": _later(3)},
        headers=await _staff(client, "admin"),
    )
    assert low.status_code == 422
    assert "money.category_prices.aluminium.min_idr" in low.json()["detail"]
    prices = (await client.get(f"/api/banks/{BM}/prices", params={"at": _later(10)})).json()
    assert {p["category_code"]: p["price_idr"] for p in prices["prices"]}["pet"] == 50_000


async def test_a_manual_deposit_beyond_its_limits_is_a_422_naming_the_limit(
    client: httpx.AsyncClient,
) -> None:
    petugas = await _staff(client, "petugas-bm-01")
    url = f"/api/banks/{BM}/deposits"

    def body(category: str, net_g: int) -> dict[str, Any]:
        return {"member_no": MEMBER, "category": category, "net_g": net_g, "reason": "rusak"}

    assert (await client.post(url, json=body("kardus", 10_000), headers=petugas)).status_code == 201
    heavy = await client.post(url, json=body("kardus", 10_001), headers=petugas)
    assert heavy.status_code == 422
    assert "(money.manual_max_g)" in heavy.json()["detail"]
    # Ambon's own amount limit (Rp35,000): 8,750 g of PET is Rp35,000; 8,751 g is Rp35,004.
    assert (await client.post(url, json=body("pet", 8_750), headers=petugas)).status_code == 201
    dear = await client.post(url, json=body("pet", 8_751), headers=petugas)
    assert dear.status_code == 422
    assert "Rp35.004" in dear.json()["detail"]
    assert "(money.cities.ambon.manual_max_idr)" in dear.json()["detail"]
    member = (await client.get(f"/api/members/{MEMBER}/balance", headers=petugas)).json()
    assert member["balance_idr"] == 400_000 + 15_000 + 35_000


async def test_the_limits_in_force_at_a_bank(client: httpx.AsyncClient) -> None:
    got = await client.get(f"/api/banks/{BM}/limits", headers=await _staff(client, "dlh-ambon"))
    assert got.status_code == 200, got.text
    limits = got.json()
    assert (limits["city_code"], limits["scale_max_g"], limits["manual_max_g"]) == (
        "ambon",
        500_000,
        10_000,
    )
    assert (limits["manual_max_idr"], limits["second_approval_above_idr"]) == (35_000, 50_000)
    assert limits["scales"] == {"gw-01/scale-01": 150_000}
    prices = {p["category_code"]: p for p in limits["prices"]}
    assert (prices["pet"]["max_idr"], prices["pet"]["max_setting"]) == (
        50_000,
        "money.price_max_idr",
    )
    assert (prices["aluminium"]["min_idr"], prices["aluminium"]["min_setting"]) == (
        1_000,
        "money.category_prices.aluminium.min_idr",
    )
    other_bank = await _staff(client, "petugas-nsw-01")
    assert (await client.get(f"/api/banks/{BM}/limits", headers=other_bank)).status_code == 403


async def test_a_large_withdrawal_takes_three_people_and_every_refusal_is_audited(
    client: httpx.AsyncClient,
) -> None:
    bm1, bm2, bm3 = [await _staff(client, f"petugas-bm-0{n}") for n in (1, 2, 3)]
    admin = await _staff(client, "admin")
    asks = f"/api/members/{MEMBER}/withdrawals"

    # At the amount: one attendant asks, approves and pays.
    small = await client.post(asks, json={"amount_idr": 50_000}, headers=bm1)
    assert (small.status_code, small.json()["dual_control"]) == (201, False)
    wid = small.json()["id"]
    assert (await client.post(f"/api/withdrawals/{wid}/approve", headers=bm1)).status_code == 200
    paid = await client.post(f"/api/withdrawals/{wid}/pay", json={}, headers=bm1)
    assert paid.status_code == 200, paid.text

    # Above it: the attendant who asked tries to approve, twice.
    big = await client.post(asks, json={"amount_idr": 50_001}, headers=bm1)
    assert (big.status_code, big.json()["dual_control"]) == (201, True)
    wid = big.json()["id"]
    for _ in range(2):
        refused = await client.post(f"/api/withdrawals/{wid}/approve", headers=bm1)
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith(
            "perlu orang kedua / a second person must do this: "
        )
        assert "petugas-bm-01 asked for it" in refused.json()["detail"]
    balance = (await client.get(f"/api/members/{MEMBER}/balance", headers=bm1)).json()
    assert balance["available_idr"] == 400_000 - 50_000 - 50_001  # reserved all the while
    approved = await client.post(f"/api/withdrawals/{wid}/approve", headers=bm2)
    assert (approved.status_code, approved.json()["decided_by"]) == (200, "petugas-bm-02")
    for who in (bm2, bm1):  # who approved, who asked
        assert (
            await client.post(f"/api/withdrawals/{wid}/pay", json={}, headers=who)
        ).status_code == 403
    done = await client.post(f"/api/withdrawals/{wid}/pay", json={}, headers=bm3)
    assert (done.status_code, done.json()["paid_by"]) == (200, "petugas-bm-03")

    # The member asks; an admin approves; the admin may not pay, an attendant may.
    siti = await login(client, MEMBER, PIN)
    own = await client.post(asks, json={"amount_idr": 60_000}, headers=siti)
    assert own.json()["dual_control"] is True
    wid2 = own.json()["id"]
    assert (await client.post(f"/api/withdrawals/{wid2}/approve", headers=admin)).status_code == 200
    assert (
        await client.post(f"/api/withdrawals/{wid2}/pay", json={}, headers=admin)
    ).status_code == 403

    # The member's page says why it takes two people.
    page = await client.post(
        "/masuk", data=await with_csrf(client, {"username": MEMBER, "password": PIN})
    )
    assert page.status_code == 303, page.text
    html = (await client.get(f"/nasabah/{MEMBER}")).text
    assert html.count('class="muted small dual-control"') == 1  # the open one, not the paid
    assert "dua petugas yang berbeda" in html
    client.cookies.clear()

    log = (await client.get("/api/audit", params={"entity": "withdrawal"}, headers=admin)).json()
    trail = [
        (e["action"], e["actor"]) for e in reversed(log) if e["entity_id"] in (str(wid), str(wid2))
    ]
    assert trail == [
        ("withdrawal.request", "petugas-bm-01"),
        ("withdrawal.approve.refused", "petugas-bm-01"),
        ("withdrawal.approve.refused", "petugas-bm-01"),
        ("withdrawal.approve", "petugas-bm-02"),
        ("withdrawal.pay.refused", "petugas-bm-02"),
        ("withdrawal.pay.refused", "petugas-bm-01"),
        ("withdrawal.pay", "petugas-bm-03"),
        ("withdrawal.request", MEMBER),
        ("withdrawal.approve", "admin"),
        ("withdrawal.pay.refused", "admin"),
    ]
    request_entry = next(
        e for e in log if e["entity_id"] == str(wid) and e["action"] == "withdrawal.request"
    )
    assert request_entry["summary"] == f"{MEMBER} Rp50001 (dual control)"
