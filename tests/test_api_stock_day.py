"""Sales, transfers, residue, the stock per category and a bank's day through the API (issue 15,
parts 3 and 4), on both ledgers: the stock is one rule (in - sold - transferred - residue equals
what the ledger holds), the day's totals are the ledger's by the city's local day, a close
records the counted cash against the expected and is audited, once per day; who may do what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.app import create_app
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, login
from tests.conftest import deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import ledger

BM, RIJALI, NSW = "bs-batu-merah", "bs-rijali", "bs-nusaniwe"
WIT = ZoneInfo("Asia/Jayapura")
PET_G = 100_000  # AMB-0001's deposit at bank 1: Rp400,000
RIJALI_CARD = "04C1B2C3D1"  # AMB-0201 at bs-rijali (a unit of bs-batu-merah)


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def client(ledger_url: str) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ledger_url)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            at = _now() - timedelta(seconds=30)
            apply_deposit(s, deposit_event(1, net_g=PET_G, at=at))
            apply_deposit(s, deposit_event(2, net_g=3_000, category="kardus", at=at))
            apply_deposit(s, deposit_event(3, net_g=8_000, card=RIJALI_CARD, bank=RIJALI, at=at))
            s.commit()
    finally:
        engine.dispose()
    app = create_app(api_settings(ledger_url=ledger_url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.10", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def _as(client: httpx.AsyncClient, who: str) -> dict[str, str]:
    names = {
        "attendant_1": ("petugas-bm-01", PASSWORD),
        "attendant_2": ("petugas-nsw-01", PASSWORD),
        "admin": ("admin", PASSWORD),
        "dlh": ("dlh-ambon", PASSWORD),
        "citizen_a": ("AMB-0001", PIN),
    }
    return await login(client, *names[who])


def _today() -> str:
    return _now().astimezone(WIT).date().isoformat()


SALE = {"category": "pet", "grams": 10_000, "collector": "ud-galala-plastik", "revenue_idr": 45_000}


async def _stock(client: httpx.AsyncClient, h: dict[str, str], bank: str = BM) -> dict[str, int]:
    resp = await client.get(f"/api/banks/{bank}/stock", headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    line = {row["category_code"]: row for row in body["lines"]}
    for code, row in line.items():  # one rule: the breakdown adds up to what is held
        got = row["deposited_g"] + row["received_g"]
        out = row["sold_g"] + row["transferred_g"] + row["residue_g"] + row["burned_g"]
        assert got - out == row["held_g"] == body["stock_g"][code]
    held: dict[str, int] = body["stock_g"]
    return held


async def test_a_sale_transfer_and_residue_lower_the_stock_as_the_ledger_holds_it(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    bm = await _as(client, "attendant_1")
    assert await _stock(client, bm) == {"kardus": 3_000, "pet": PET_G}

    sold = await client.post(f"/api/banks/{BM}/sales", json=SALE, headers=bm)
    assert sold.status_code == 201, sold.text
    assert sold.json()["payment_method"] == "cash"
    assert sold.json()["collector_name"] == "UD Galala Plastik"
    gone = await client.post(
        f"/api/banks/{BM}/residue",
        json={"category": "kardus", "grams": 500, "note": "basah / wet"},
        headers=bm,
    )
    assert gone.status_code == 201, gone.text
    assert gone.json()["kind"] == "residue"
    # bank 1's attendant acts at its unit: Rijali's stock to its induk, re-weighed there
    moved = await client.post(
        f"/api/banks/{RIJALI}/transfers",
        json={"category": "pet", "grams": 8_000, "received_g": 7_900},
        headers=bm,
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["to_bank_code"] == BM

    assert await _stock(client, bm) == {"kardus": 2_500, "pet": PET_G - 10_000 + 7_900}
    assert await _stock(client, bm, RIJALI) == {"pet": 0}
    lines = (await client.get(f"/api/banks/{BM}/stock", headers=bm)).json()["lines"]
    pet = next(line for line in lines if line["category_code"] == "pet")
    assert (pet["deposited_g"], pet["received_g"], pet["sold_g"]) == (PET_G, 7_900, 10_000)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:  # the API's figures are the ledger's own
            assert ledger.bank_stock(s, BM) == {"kardus": 2_500, "pet": 97_900}
            assert ledger.verify(s) == []
    finally:
        engine.dispose()

    kinds = await client.get(f"/api/banks/{BM}/movements", headers=bm)
    assert [m["kind"] for m in kinds.json()] == ["transfer", "residue", "sale"]
    audit = await client.get(
        "/api/audit", params={"entity": "stock_movement"}, headers=await _as(client, "admin")
    )
    actions = [e["action"] for e in audit.json()]
    assert actions == ["stock.transfer", "stock.residue", "stock.sale"]


async def test_refusals_and_who_may_move_stock(client: httpx.AsyncClient) -> None:
    bm = await _as(client, "attendant_1")
    cases = [
        ("attendant_2", f"/api/banks/{BM}/sales", SALE, 403),  # another bank's attendant
        ("citizen_a", f"/api/banks/{BM}/sales", SALE, 403),
        ("dlh", f"/api/banks/{BM}/residue", {"category": "pet", "grams": 1}, 403),
        ("admin", f"/api/banks/{BM}/sales", SALE, 403),  # sales: the bank's own staff
        ("attendant_2", f"/api/banks/{RIJALI}/transfers", {"category": "pet", "grams": 1}, 403),
        ("attendant_1", f"/api/banks/{BM}/transfers", {"category": "pet", "grams": 1}, 409),
        ("attendant_1", f"/api/banks/{BM}/sales", {**SALE, "grams": PET_G + 1}, 409),
        ("attendant_1", f"/api/banks/{BM}/sales", {**SALE, "grams": 0}, 422),
        ("attendant_1", f"/api/banks/{BM}/sales", {**SALE, "payment_method": "utang"}, 422),
        ("attendant_1", f"/api/banks/{BM}/sales", {**SALE, "collector": "ud-tak-ada"}, 404),
        (
            "attendant_1",
            f"/api/banks/{BM}/residue",
            {"category": "pet", "grams": 1, "kind": "x"},
            422,
        ),
        ("attendant_1", f"/api/banks/{BM}/residue", {"category": "tak-ada", "grams": 1}, 404),
    ]
    for who, url, body, status in cases:
        resp = await client.post(url, json=body, headers=await _as(client, who))
        assert resp.status_code == status, (who, url, body, resp.text)
    refused = await client.post(
        f"/api/banks/{BM}/transfers", json={"category": "pet", "grams": 1}, headers=bm
    )
    assert refused.json()["detail"].startswith(
        "Bank Sampah Batu Merah Bersih tidak punya bank induk /"
    )
    for who, status in (("attendant_2", 403), ("citizen_a", 403), ("dlh", 200)):
        resp = await client.get(f"/api/banks/{BM}/stock", headers=await _as(client, who))
        assert resp.status_code == status, (who, resp.text)
    assert await _stock(client, bm) == {"kardus": 3_000, "pet": PET_G}  # nothing moved


async def test_a_sale_sent_again_with_its_key_is_recorded_once(client: httpx.AsyncClient) -> None:
    bm = await _as(client, "attendant_1")
    body = {**SALE, "idempotency_key": "gw-petugas.sale.7f3a"}
    first = await client.post(f"/api/banks/{BM}/sales", json=body, headers=bm)
    again = await client.post(f"/api/banks/{BM}/sales", json=body, headers=bm)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other = await client.post(f"/api/banks/{BM}/sales", json={**body, "grams": 9_000}, headers=bm)
    assert other.status_code == 409, other.text
    assert "grams" in other.json()["detail"]
    assert (await _stock(client, bm))["pet"] == PET_G - 10_000


async def _pay_cash(ledger_url: str, member_no: str, amount: int) -> None:
    """A cash withdrawal asked, approved and paid out at bank 1 (the withdrawal pages' work)."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            w = ledger.request_withdrawal(
                s, member_no, amount, "cash", requested_by="petugas-bm-01"
            )
            ledger.approve_withdrawal(s, w.id, author="petugas-bm-01")
            ledger.pay_withdrawal(s, w.id, author="petugas-bm-01")
            s.commit()
    finally:
        engine.dispose()


async def test_the_day_totals_and_its_close_are_the_ledgers(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    bm, admin = await _as(client, "attendant_1"), await _as(client, "admin")
    today = _today()
    yesterday = (datetime.fromisoformat(today) - timedelta(days=1)).date().isoformat()
    # Yesterday closed first, with the float the drawer started with (nothing moved that day).
    first = await client.post(
        f"/api/banks/{BM}/days/{yesterday}/close",
        json={"counted_cash_idr": 100_000, "opening_cash_idr": 100_000},
        headers=bm,
    )
    assert first.status_code == 201, first.text
    assert (first.json()["cash"]["expected_idr"], first.json()["difference_idr"]) == (100_000, 0)

    assert (await client.post(f"/api/banks/{BM}/sales", json=SALE, headers=bm)).status_code == 201
    transfer_sale = {
        **SALE,
        "grams": 1_000,
        "revenue_idr": 4_500,
        "payment_method": "bank_transfer",
    }
    assert (
        await client.post(f"/api/banks/{BM}/sales", json=transfer_sale, headers=bm)
    ).status_code == 201
    await _pay_cash(ledger_url, "AMB-0001", 60_000)
    voided = await client.post(
        f"/api/banks/{BM}/deposits",
        json={
            "member_no": "AMB-0002",
            "category": "pet",
            "net_g": 2_000,
            "reason": "timbangan mati",
        },
        headers=bm,
    )
    assert voided.status_code == 201, voided.text
    void = await client.post(
        f"/api/deposits/{voided.json()['event_id']}/void", json={"reason": "salah"}, headers=bm
    )
    assert void.status_code == 200, void.text

    day = await client.get(f"/api/banks/{BM}/days/{today}", headers=bm)
    assert day.status_code == 200, day.text
    d = day.json()
    assert d["zone_label"] == "WIT"
    assert {r["category_code"]: (r["grams"], r["amount_idr"]) for r in d["deposits"]} == {
        "pet": (PET_G, 400_000),
        "kardus": (3_000, 4_500),
    }
    assert d["deposits_total"] == {"count": 2, "grams": PET_G + 3_000, "amount_idr": 404_500}
    assert d["voided"] == {"count": 1, "grams": 2_000, "amount_idr": 8_000}
    assert d["withdrawals_paid"] == [{"method": "cash", "count": 1, "amount_idr": 60_000}]
    assert d["sales_total"] == {"count": 2, "grams": 11_000, "amount_idr": 49_500}
    assert {m["method"]: m["amount_idr"] for m in d["sales_by_method"]} == {
        "bank_transfer": 4_500,
        "cash": 45_000,
    }
    # cash expected: yesterday's counted + the cash sale - the cash payout; the transfer apart
    assert d["cash"]["opening_source"] == "previous_close"
    assert (d["cash"]["opening_idr"], d["cash"]["in_idr"], d["cash"]["out_idr"]) == (
        100_000,
        45_000,
        60_000,
    )
    assert d["cash"]["expected_idr"] == 85_000
    assert d["closable"] is True
    assert d["close"] is None
    pet = next(line for line in d["stock"] if line["category_code"] == "pet")
    assert pet["held_g"] == PET_G - 11_000

    # an opening float is the previous close's: not entered again
    refused = await client.post(
        f"/api/banks/{BM}/days/{today}/close",
        json={"counted_cash_idr": 80_000, "opening_cash_idr": 5},
        headers=bm,
    )
    assert refused.status_code == 422, refused.text
    closed = await client.post(
        f"/api/banks/{BM}/days/{today}/close",
        json={"counted_cash_idr": 80_000, "note": "kurang lima ribu"},
        headers=bm,
    )
    assert closed.status_code == 201, closed.text
    c = closed.json()
    assert (c["cash"]["expected_idr"], c["counted_cash_idr"], c["difference_idr"]) == (
        85_000,
        80_000,
        -5_000,
    )
    again = await client.post(
        f"/api/banks/{BM}/days/{today}/close", json={"counted_cash_idr": 85_000}, headers=bm
    )
    assert again.status_code == 409, again.text
    assert again.json()["detail"].startswith("hari sudah ditutup / the day is already closed")
    earlier = await client.post(
        f"/api/banks/{BM}/days/{yesterday}/close", json={"counted_cash_idr": 1}, headers=bm
    )
    assert earlier.status_code == 409, earlier.text
    shown = (await client.get(f"/api/banks/{BM}/days/{today}", headers=bm)).json()
    assert shown["close"]["difference_idr"] == -5_000
    assert shown["closable"] is False

    audit = await client.get("/api/audit", params={"entity": "day_close"}, headers=admin)
    (entry, _first) = audit.json()
    assert entry["action"] == "day.close"
    assert entry["entity_id"] == str(c["id"])
    assert "difference -Rp5.000" in entry["summary"]

    # only an admin reopens (the latest close), audited; the day is then closed again
    no = await client.post(f"/api/banks/{BM}/days/{today}/reopen", json={"reason": "x"}, headers=bm)
    assert no.status_code == 403, no.text
    old = await client.post(
        f"/api/banks/{BM}/days/{yesterday}/reopen", json={"reason": "salah"}, headers=admin
    )
    assert old.status_code == 409, old.text
    # the fifth review: it said "the day cannot be closed" about a reopen
    assert old.json()["detail"].startswith("hari tidak dapat dibuka kembali / the day cannot be")
    reopened = await client.post(
        f"/api/banks/{BM}/days/{today}/reopen", json={"reason": "uang di laci kedua"}, headers=admin
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["reopened_by"] == "admin"
    recount = await client.post(
        f"/api/banks/{BM}/days/{today}/close", json={"counted_cash_idr": 85_000}, headers=bm
    )
    assert recount.status_code == 201, recount.text
    assert (recount.json()["revision"], recount.json()["difference_idr"]) == (2, 0)
    history = (await client.get(f"/api/banks/{BM}/days/{today}", headers=bm)).json()["closes"]
    assert [(h["revision"], h["reopened_by"]) for h in history] == [(1, "admin"), (2, None)]
    actions = [
        e["action"]
        for e in (
            await client.get("/api/audit", params={"entity": "day_close"}, headers=admin)
        ).json()
    ]
    assert actions == ["day.close", "day.reopen", "day.close", "day.close"]


async def test_who_may_read_and_close_a_day(client: httpx.AsyncClient) -> None:
    today = _today()
    url = f"/api/banks/{BM}/days/{today}"
    for who, status in (("attendant_2", 403), ("citizen_a", 403), ("dlh", 200), ("admin", 200)):
        resp = await client.get(url, headers=await _as(client, who))
        assert resp.status_code == status, (who, resp.text)
    for who in ("attendant_2", "citizen_a", "dlh"):
        resp = await client.post(
            f"{url}/close", json={"counted_cash_idr": 0}, headers=await _as(client, who)
        )
        assert resp.status_code == 403, (who, resp.text)
    bm = await _as(client, "attendant_1")
    future = (_now().astimezone(WIT).date() + timedelta(days=1)).isoformat()
    for path, body, status in (
        (f"/api/banks/{BM}/days/{future}/close", {"counted_cash_idr": 0}, 422),
        (f"/api/banks/{BM}/days/2026-02-30/close", {"counted_cash_idr": 0}, 422),
        (f"{url}/close", {"counted_cash_idr": -1}, 422),
        (f"{url}/close", {"counted_cash_idr": "1e5"}, 422),
        (f"{url}/close", {}, 422),
        (f"/api/banks/bs-tak-ada/days/{today}/close", {"counted_cash_idr": 0}, 404),
    ):
        resp = await client.post(path, json=body, headers=bm)
        assert resp.status_code == status, (path, body, resp.text)
    for far in ("0001-01-01", "1999-12-31", "2200-01-01", "9999-12-31"):  # datetime's edges
        resp = await client.get(f"/api/banks/{BM}/days/{far}", headers=bm)
        assert resp.status_code == 422, (far, resp.text)
        assert "tanggal di luar jangkauan" in resp.json()["detail"]
        # a close too: beyond 2199 it said "belum tiba / still to come" (the fifth review)
        resp = await client.post(
            f"/api/banks/{BM}/days/{far}/close", json={"counted_cash_idr": 0}, headers=bm
        )
        assert resp.status_code == 422, (far, resp.text)
        assert "tanggal di luar jangkauan" in resp.json()["detail"]
    assert (await client.get(url, headers=bm)).json()["closable"] is True
    admin_close = await client.post(
        f"{url}/close", json={"counted_cash_idr": 0}, headers=await _as(client, "admin")
    )
    assert admin_close.status_code == 201, admin_close.text
    assert admin_close.json()["closed_by"] == "admin"


def test_the_ledger_lets_one_close_per_bank_day(ledger_url: str) -> None:
    """Two closes of one day, as two requests at once would write them: the unique (bank,
    day, revision) refuses the second even past the check."""
    engine = ledger.make_engine(ledger_url)
    today = _now().astimezone(WIT).date()
    try:
        with Session(engine) as s:
            row = ledger.close_day(s, BM, today, counted_cash_idr=0, author="petugas-bm-01")
            s.commit()
            bank = s.scalars(select(ledger.Bank).where(ledger.Bank.code == BM)).one()
            twin = ledger.DayClose(
                bank_id=bank.id,
                local_date=today,
                revision=row.revision,
                cash_from=row.cash_from,
                cash_until=row.cash_until,
                opening_cash_idr=0,
                opening_source="entered",
                cash_in_idr=0,
                cash_out_idr=0,
                expected_cash_idr=0,
                counted_cash_idr=0,
                difference_idr=0,
                note="",
                closed_by="petugas-bm-01",
            )
            s.add(twin)
            with pytest.raises(IntegrityError):
                s.commit()
    finally:
        engine.dispose()
