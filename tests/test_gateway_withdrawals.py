"""Withdrawals decided at the gateway (issue 15, part 1), against the real central API and
ledger: approve and pay with the acting attendant's token, the second-person rule refused at the
desk, decisions queued while the central API is unreachable and sent in order when it is back,
and a payment never made twice (a repeat of the same payment is the same payment; a 409 is done
only when the ledger's paid record is this one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.app import Gateway
from gateway.central import Central
from gateway.http.attendant import AttendantService
from gateway.http.attendant.withdrawal_desk import QUEUED_CASH, SECOND, WithdrawalDesk, desk_of
from gateway.http.attendant.withdrawals import load_receipt, next_step, one_view
from gateway.withdrawal_store import WithdrawalRow
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import deposit_event, free_port
from tests.gateway_helpers import gateway_settings
from tests.ledger_helpers import apply_deposit
from wastebank import ledger
from wastebank.errors import Conflict, Forbidden, Invalid
from wastebank.money_rules import MoneyRules

MEMBER = "AMB-0001"
LIMIT = 50_000  # the second-person rule above Rp50.000


@pytest.fixture
def api(ledger_url: str) -> Iterator[ApiEnv]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            apply_deposit(s, deposit_event(1, net_g=100_000))  # Rp400.000 for AMB-0001
            s.commit()
    finally:
        engine.dispose()
    settings = api_settings(
        ledger_url=ledger_url, money=MoneyRules(second_approval_above_idr=LIMIT)
    )
    with ApiEnv(ledger_url, settings) as env:
        yield env


@pytest.fixture
async def desk(api: ApiEnv, tmp_path: Path) -> AsyncIterator[WithdrawalDesk]:
    gw = Gateway(gateway_settings(tmp_path, api_url=str(api.client.base_url)))
    service = AttendantService(gw)
    try:
        for name in ("attendant_1", "attendant_1b"):
            await service.login(*api.creds[name])
        yield desk_of(service)
    finally:
        await service.aclose()
        gw.outbox.close()


def _ask(api: ApiEnv, amount: int) -> int:
    """The member asks (on the central API, as from their phone)."""
    resp = api.client.post(
        f"/api/members/{MEMBER}/withdrawals",
        json={"amount_idr": amount},
        headers=api.bearer("citizen_a"),
    )
    assert resp.status_code == 201, resp.text
    wid: int = resp.json()["id"]
    return wid


def _payments(api: ApiEnv, wid: int) -> int:
    """How many times the ledger paid ``wid``: its journal legs, two per payment."""
    with Session(api.engine) as s:
        legs = s.scalar(
            select(func.count())
            .select_from(ledger.JournalEntry)
            .where(ledger.JournalEntry.txn_ref == f"withdrawal:{wid}")
        )
    return int(legs or 0) // 2


def _balance(api: ApiEnv) -> int:
    resp = api.client.get(f"/api/members/{MEMBER}/balance", headers=api.bearer("admin"))
    value: int = resp.json()["balance_idr"]
    return value


def _offline(desk: WithdrawalDesk) -> Central:
    """Point the gateway at a port nobody listens on; the real client, to put back."""
    service = desk.service
    real = service.api()
    assert real is not None
    service.central = Central(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    return real


async def _online(desk: WithdrawalDesk, real: Central) -> None:
    service = desk.service
    assert service.central is not None
    await service.central.aclose()
    service.central = real


async def test_an_attendant_approves_and_pays_and_the_member_is_debited_once(
    api: ApiEnv, desk: WithdrawalDesk
) -> None:
    wid = _ask(api, 20_000)
    assert await desk.refresh(desk.service.tokens["petugas-bm-01"])
    row = desk.store.get(wid)
    assert row is not None
    assert (row.status, row.member_name, row.available_idr) == (
        "requested",
        "Siti Latuconsina",
        380_000,  # reserved from the request on
    )
    who = await desk.service.login(*api.creds["attendant_1"])
    approved = await desk.ask(who, wid, "approve")
    assert (approved.action.state, approved.withdrawal.status) == ("done", "approved")
    paid = await desk.ask(who, wid, "pay")
    ref = paid.action.payout_ref
    assert ref is not None
    assert ref.startswith("gw-01.")  # the gateway's own receipt number for cash
    assert (paid.action.state, paid.withdrawal.status, paid.withdrawal.payout_ref) == (
        "done",
        "paid",
        ref,
    )
    assert _payments(api, wid) == 1
    assert _balance(api) == 380_000

    view = one_view(desk.service, paid.withdrawal, who)
    assert view.status_text == "dibayar / paid"
    assert view.next_step.startswith("dibayar ")
    assert view.next_step.endswith("WIT oleh petugas-bm-01 / paid")
    receipt = load_receipt(desk.service, str(wid))
    assert receipt.title == "STRUK PENARIKAN / WITHDRAWAL PAID"
    assert receipt.total is not None
    assert receipt.total.value == "Rp20.000"
    assert receipt.reference == ref

    # The same payment sent again (an answer lost on the way back): the same payment, nothing
    # paid twice, and the API's audit says it was a repeat.
    again = api.client.post(
        f"/api/withdrawals/{wid}/pay",
        json={"payout_ref": ref},
        headers={"Authorization": f"Bearer {desk.service.tokens['petugas-bm-01']}"},
    )
    assert (again.status_code, again.json()["payout_ref"]) == (200, ref)
    other = api.client.post(
        f"/api/withdrawals/{wid}/pay", json={"payout_ref": "another"}, headers=api.bearer("admin")
    )
    assert other.status_code == 409
    assert other.json()["detail"].endswith(
        f"penarikan {wid} sudah dibayar, tidak bisa dibayar / withdrawal {wid} is paid: "
        "it cannot be paid"
    )
    assert _payments(api, wid) == 1
    assert _balance(api) == 380_000
    audit = api.client.get(
        "/api/audit", params={"entity": "withdrawal"}, headers=api.bearer("admin")
    ).json()
    actions = [e["action"] for e in reversed(audit) if e["entity_id"] == str(wid)]
    assert actions == [
        "withdrawal.request",
        "withdrawal.approve",
        "withdrawal.pay",
        "withdrawal.pay.repeat",
    ]


async def test_above_the_limit_a_second_attendant_pays(api: ApiEnv, desk: WithdrawalDesk) -> None:
    wid = _ask(api, LIMIT + 1)
    await desk.refresh(desk.service.tokens["petugas-bm-01"])
    first = await desk.service.login(*api.creds["attendant_1"])
    second = await desk.service.login(*api.creds["attendant_1b"])
    assert (await desk.ask(first, wid, "approve")).withdrawal.status == "approved"
    row = desk.store.get(wid)
    assert row is not None
    view = one_view(desk.service, row, first)
    assert view.second_person
    assert view.next_step.startswith(f"{SECOND}: petugas-bm-01 menyetujui")
    assert view.may == []
    with pytest.raises(Forbidden, match="perlu petugas kedua / needs a second attendant"):
        await desk.ask(first, wid, "pay")
    assert one_view(desk.service, row, second).may == ["pay"]
    paid = await desk.ask(second, wid, "pay")
    assert (paid.withdrawal.status, paid.withdrawal.paid_by) == ("paid", "petugas-bm-05")
    assert _payments(api, wid) == 1

    # what the desk's copy cannot know, the ledger refuses, and the page gets its words
    other = _ask(api, LIMIT + 2)
    await desk.refresh(desk.service.tokens["petugas-bm-01"])
    approved = await desk.ask(first, other, "approve")
    assert approved.refused_status is None  # the member asked: bm-01 may approve
    with pytest.raises(Conflict, match=f"penarikan {other} disetujui: tidak bisa ditolak"):
        await desk.ask(first, other, "reject", reason="too late")
    third = _ask(api, 10_000)
    await desk.refresh(desk.service.tokens["petugas-bm-01"])
    with pytest.raises(Invalid, match="alasan penolakan wajib diisi"):
        await desk.ask(first, third, "reject", reason="  ")
    refused = await desk.ask(first, third, "reject", reason="KTP tidak dibawa")
    assert (refused.withdrawal.status, refused.withdrawal.reason) == (
        "rejected",
        "KTP tidak dibawa",
    )
    assert refused.withdrawal.member_name == "Siti Latuconsina"  # kept from the list


async def test_decisions_asked_offline_are_queued_and_sent_once_in_order(
    api: ApiEnv, desk: WithdrawalDesk
) -> None:
    wid = _ask(api, 30_000)
    await desk.refresh(desk.service.tokens["petugas-bm-01"])
    who = await desk.service.login(*api.creds["attendant_1"])
    real = _offline(desk)
    approve = await desk.ask(who, wid, "approve")
    assert approve.action.state == "pending"
    assert desk.service.central_online is False
    pay = await desk.ask(who, wid, "pay")  # the approval waits here: a payment may follow it
    assert pay.action.state == "pending"
    view = one_view(desk.service, pay.withdrawal, who)
    assert (view.shown_status, view.do_not_pay_out, view.next_step) == (
        "queued",
        True,
        QUEUED_CASH,
    )
    assert load_receipt(desk.service, str(wid)).title == "BELUM DIBAYAR / NOT PAID YET"
    with pytest.raises(Conflict, match="sudah antri / already queued"):
        await desk.ask(who, wid, "pay")
    await desk.send_queued()  # still unreachable: nothing sent, nothing lost
    assert desk.store.pending() == 2
    assert _payments(api, wid) == 0

    # The link comes back; the first send of the payment reached the ledger but its answer was
    # lost (sent here by hand with the same reference): the queue's send is the same payment.
    await _online(desk, real)
    token = {"Authorization": f"Bearer {desk.service.tokens['petugas-bm-01']}"}
    assert api.client.post(f"/api/withdrawals/{wid}/approve", headers=token).status_code == 200
    assert pay.action.payout_ref is not None
    lost = api.client.post(
        f"/api/withdrawals/{wid}/pay", json={"payout_ref": pay.action.payout_ref}, headers=token
    )
    assert lost.status_code == 200
    await desk.send_queued()
    approve_now, pay_now = (desk.store.action(a.action.id) for a in (approve, pay))
    assert approve_now is not None
    assert pay_now is not None
    # both were taken by first tries whose answers were lost: the ledger's records are these
    assert (approve_now.state, pay_now.state) == ("done", "done")
    assert _payments(api, wid) == 1
    row = desk.store.get(wid)
    assert row is not None
    assert row.status == "paid"


async def test_a_queued_cash_payment_another_attendant_made_first_is_refused(
    api: ApiEnv, desk: WithdrawalDesk
) -> None:
    wid = _ask(api, 25_000)
    first = await desk.service.login(*api.creds["attendant_1"])
    await desk.refresh(desk.service.tokens["petugas-bm-01"])
    await desk.ask(first, wid, "approve")
    second = await desk.service.login(*api.creds["attendant_1b"])
    real = _offline(desk)
    queued = await desk.ask(second, wid, "pay")
    assert queued.action.state == "pending"
    await _online(desk, real)
    paid = api.client.post(  # meanwhile bm-01 paid it at the central API
        f"/api/withdrawals/{wid}/pay",
        json={"payout_ref": "kas-01"},
        headers={"Authorization": f"Bearer {desk.service.tokens['petugas-bm-01']}"},
    )
    assert paid.status_code == 200
    await desk.send_queued()
    refused = desk.store.action(queued.action.id)
    assert refused is not None
    assert refused.state == "refused"
    assert refused.error is not None
    assert "sudah dibayar" in refused.error
    assert _payments(api, wid) == 1
    row = desk.store.get(wid)
    assert row is not None
    assert (row.paid_by, row.payout_ref) == ("petugas-bm-01", "kas-01")
    view = one_view(desk.service, row, second)
    assert view.refused is not None
    assert not view.do_not_pay_out


@pytest.mark.parametrize(
    ("status", "by", "paid_at", "step"),
    [
        ("paid", None, None, "dibayar / paid"),
        ("paid", "petugas-bm-01", None, "dibayar oleh petugas-bm-01 / paid"),
        ("paid", None, datetime(2026, 12, 7, 1, tzinfo=UTC), "dibayar 7 Des 2026 10.00 WIT / paid"),
        ("rejected", None, None, "ditolak: saldo kurang / refused"),
        ("rejected", "petugas-bm-02", None, "ditolak oleh petugas-bm-02: saldo kurang / refused"),
    ],
)
def test_a_settled_withdrawal_s_step_leaves_out_what_it_does_not_know(
    status: str, by: str | None, paid_at: datetime | None, step: str
) -> None:
    """A withdrawal settled at the central office may come without its attendant or its time:
    the step said 'oleh None' and left a double space."""
    at = datetime(2026, 12, 7, 0, tzinfo=UTC)
    row = WithdrawalRow(
        id=7, member_no="AMB-0001", member_name="Siti", amount_idr=20_000, method="cash",
        destination=None, status=status, requested_at=at, requested_by="petugas-bm-01",
        decided_at=at, decided_by=by if status == "rejected" else "petugas-bm-01",
        reason="saldo kurang" if status == "rejected" else None, paid_at=paid_at,
        paid_by=by if status == "paid" else None, payout_ref=None, dual_control=False,
        available_idr=None, synced_at=at,
    )  # fmt: skip
    service = cast(AttendantService, SimpleNamespace(tz=ZoneInfo("Asia/Jayapura")))
    assert next_step(service, row, [], "petugas-bm-03") == (step, False)
