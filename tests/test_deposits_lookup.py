"""GET /api/banks/{bank}/deposits?event_id=...: what the ledger made of deposits, by event id
(the gateway's receipts show the ledger's amount once it has applied a deposit)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import deposit_event
from wastebank import ledger
from wastebank.money_rules import amount_for
from wastebank.structs import replace

pytestmark = pytest.mark.integration

BANK, OTHER = "bs-batu-merah", "bs-nusaniwe"


@pytest.fixture
def api(ledger_url: str) -> Iterator[ApiEnv]:
    with ApiEnv(ledger_url, api_settings(ledger_url=ledger_url)) as env:
        yield env


def lookup(api: ApiEnv, who: str, bank: str, *ids: str) -> tuple[int, dict[str, Any]]:
    resp = api.client.get(
        f"/api/banks/{bank}/deposits",
        params=[("event_id", e) for e in ids],
        headers=api.bearer(who),
    )
    return resp.status_code, resp.json()


def test_the_ledgers_amount_price_and_void_by_event_id(api: ApiEnv) -> None:
    # An admin's new price from an hour and a half ago: the deposits (an hour ago) use it.
    since = datetime.now(UTC) - timedelta(minutes=90)
    put = api.client.put(
        f"/api/banks/{BANK}/prices/pet",
        json={"price_idr": 1500, "effective_from": since.isoformat()},
        headers=api.bearer("admin"),
    )
    assert put.status_code == 200, put.text
    with Session(api.engine) as s:
        applied = ledger.apply_deposits(
            s, [deposit_event(901, net_g=14_900), deposit_event(902, net_g=2_000)]
        )
        assert all(isinstance(a, ledger.AppliedDeposit) for a in applied)
        attendant = api.creds["attendant_1"][0]
        ledger.void_deposit(s, "gw-01-902", author=attendant, reason="salah timbang")
        s.commit()

    status, body = lookup(api, "attendant_1", BANK, "gw-01-901", "gw-01-902", "gw-01-999")
    assert status == 200, body
    deposits = {d["event_id"]: d for d in body["deposits"]}
    first = deposits["gw-01-901"]
    assert first["price_per_kg_idr"] == 1500
    assert first["amount_idr"] == amount_for(14_900, 1500) == 22_350
    assert first["net_g"] == 14_900
    assert first["member_no"] == "AMB-0001"
    assert first["voided"] is False
    assert deposits["gw-01-902"]["voided"] is True
    assert deposits["gw-01-902"]["voided_at"] is not None
    assert body["missing"] == ["gw-01-999"]  # not applied (yet)

    # The same through the member's own history: one truth.
    tx = api.client.get("/api/members/AMB-0001/transactions", headers=api.bearer("admin"))
    assert tx.status_code == 200, tx.text
    assert "22350" in tx.text or "22.350" in tx.text


def test_whether_the_gateways_clock_was_synchronized_when_it_stamped(api: ApiEnv) -> None:
    """clock_synced as the gateway said it (false: stamped before its first sync since boot, the
    time may be off), null where nothing was said (an older gateway, a manual deposit)."""
    with Session(api.engine) as s:
        ledger.apply_deposits(
            s,
            [
                replace(deposit_event(921), clock_synced=False),
                replace(deposit_event(922), clock_synced=True),
                deposit_event(923),  # a gateway from before issue 16 says nothing
            ],
        )
        manual = ledger.record_manual_deposit(
            s,
            bank_code=BANK,
            member_no="AMB-0001",
            category_code="pet",
            net_g=800,
            measured_at=None,
            author=api.creds["attendant_1"][0],
            reason="timbangan rusak",
        )
        s.commit()
    ids = ("gw-01-921", "gw-01-922", "gw-01-923", manual.event_id)
    status, body = lookup(api, "attendant_1", BANK, *ids)
    assert status == 200, body
    said = {d["event_id"]: d["clock_synced"] for d in body["deposits"]}
    assert said == dict(zip(ids, (False, True, None, None), strict=True))


def test_only_the_banks_readers_and_only_its_deposits(api: ApiEnv) -> None:
    with Session(api.engine) as s:
        ledger.apply_deposits(s, [deposit_event(911)])
        s.commit()
    status, body = lookup(api, "attendant_2", BANK, "gw-01-911")  # another bank's attendant
    assert status == 403, body
    status, body = lookup(api, "citizen_a", BANK, "gw-01-911")
    assert status == 403, body
    # asked at another bank, a deposit of this one is not told apart from one never made
    status, body = lookup(api, "admin", OTHER, "gw-01-911")
    assert status == 200, body
    assert body == {"bank_code": OTHER, "deposits": [], "missing": ["gw-01-911"]}


def test_ids_are_required_and_bounded(api: ApiEnv) -> None:
    resp = api.client.get(f"/api/banks/{BANK}/deposits", headers=api.bearer("attendant_1"))
    assert resp.status_code == 422, resp.text
    status, body = lookup(api, "attendant_1", BANK, *[f"gw-01-{n}" for n in range(101)])
    assert status == 422, body
    status, body = lookup(api, "attendant_1", "no-such-bank", "gw-01-1")
    assert status == 404, body
