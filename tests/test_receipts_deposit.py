"""The deposit receipt on the gateway (issue 15, "receipts that match"): never a price the
ledger will not use. An estimate at the freshest price list while the deposit is not applied;
the ledger's amount and price, learnt from the central API, once it is. The receipt's page, its
JSON and its print to an ESC/POS printer (a file printer: the bytes the device gets).

The gateway's app is the real one over httpx's ASGI transport; the central API is faked at the
transport seam (tests/gateway_helpers.py), with the ledger's lookup by event id added here (the
real route is tested in tests/test_deposits_lookup.py, and both together end to end in
tests/test_pages_attendant_receipts.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest

from gateway import receipts
from gateway.app import Gateway
from gateway.attendant_store import AttendantDb
from gateway.http import local_api
from gateway.http.attendant import AttendantService, applied, views
from gateway.kiosk import DepositCandidate
from gateway.outbox import Outbox
from tests.gateway_helpers import BANK, PASSWORD, FakeCentral, attendant_service, gateway_settings
from wastebank.money_rules import amount_for

Gw = tuple[AttendantService, httpx.AsyncClient, "LedgerCentral"]


class LedgerCentral(FakeCentral):
    """The fake central API with a price list an admin changes (``price``) and the ledger's
    answer to ``GET /api/banks/{bank}/deposits?event_id=`` (``ledger``: what it applied)."""

    def __init__(self) -> None:
        super().__init__()
        self.price = 4000
        self.ledger: dict[str, tuple[int, int, bool]] = {}  # event id -> amount, price, voided
        self.asked: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/api/banks/{BANK}/prices" and not self.down:
            price = {"category_code": "pet", "category_name": "Botol PET", "unit": "kg"}
            return httpx.Response(200, json={"prices": [{**price, "price_idr": self.price}]})
        if path == f"/api/banks/{BANK}/deposits" and not self.down:
            if request.headers.get("authorization") != "Bearer tok-petugas-bm-01":
                return httpx.Response(401, json={"detail": "bad token"})
            asked = request.url.params.get_list("event_id")
            self.asked.append(asked)
            at = "2026-12-06T00:30:05+00:00"
            found = [
                {
                    "event_id": e,
                    "amount_idr": amount,
                    "price_per_kg_idr": price,
                    "applied_at": at,
                    "voided": voided,
                }
                for e in asked
                if e in self.ledger
                for amount, price, voided in [self.ledger[e]]
            ]
            missing = [e for e in asked if e not in self.ledger]
            return httpx.Response(
                200, json={"bank_code": BANK, "deposits": found, "missing": missing}
            )
        return super().__call__(request)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    fake = LedgerCentral()
    settings = gateway_settings(tmp_path, printer={"kind": "file", "path": str(tmp_path / "lp0")})
    (tmp_path / "lp0").touch()
    async with attendant_service(settings, fake) as svc:
        app = local_api.http_app(svc.gw, svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client:
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]
            yield svc, client, fake


def record(gw: Gateway, net_g: int) -> str:
    """A deposit recorded at the scale for Siti (the price cached now goes in the journal)."""
    reader = gw.readers["scale-01"]
    gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-bm-01")
    candidate = DepositCandidate(None, "pet", net_g, 0, True, "gs_nt", ("x",), member_no="AMB-0001")
    seq = gw.recorder.store_deposit(reader, candidate)
    assert seq is not None
    return gw.event_id(seq)


def sent(gw: Gateway) -> None:
    """The broker took every deposit waiting in the outbox."""
    rows = [r for r in gw.outbox.peek() if r.topic.endswith("deposit")]
    gw.outbox.remove_many([r.id for r in rows])
    gw.attendant_db.journal.mark_sent([r.id for r in rows], datetime.now(UTC))


async def test_estimate_at_the_freshest_list_then_the_ledgers_amount(gateway: Gw) -> None:
    svc, client, fake = gateway
    gw = svc.gw
    event_id = record(gw, 14_900)  # recorded at the list cached at login: Rp4.000/kg
    entry = gw.attendant_db.journal.get(event_id)
    assert entry is not None
    assert entry.price_per_kg_idr == 4000

    # An admin lowers the price; the gateway's list catches up (the sync): the estimate follows
    # the freshest list, not the price cached when the load was recorded.
    fake.price = 1500
    await svc.sync_prices()
    view = views.deposit_view(svc, entry)
    assert (view.estimate, view.price_per_kg_idr, view.amount_idr) == (True, 1500, 22_350)
    page = await client.get(f"/petugas/struk/setoran/{event_id}")
    assert page.status_code == 200, page.text
    assert receipts.ESTIMATE_TEXT in page.text
    assert "Rp22.350" in page.text
    assert "Rp1.500/kg" in page.text
    assert "Rp4.000" not in page.text

    # Not sent yet: nobody asks the central API about it.
    assert await applied.sync_due(svc) == 0
    assert fake.asked == []
    sent(gw)
    # Sent, not applied yet: asked, and still an estimate.
    assert await applied.sync_due(svc) == 0
    assert fake.asked == [[event_id]]
    assert await applied.sync_due(svc) == 0  # not asked again at once (every RECENT_POLL_S)
    assert fake.asked == [[event_id]]

    # The ledger applied it at the price in force at its measured time (say an effective_from
    # earlier than the gateway knew: Rp1.450): the receipt shows the ledger's figures.
    fake.ledger[event_id] = (amount_for(14_900, 1450), 1450, False)
    seen = gw.live.version
    opened = await client.get(f"/petugas/api/struk/setoran/{event_id}")  # asks on opening
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["estimate"] is False
    assert body["total"] == ["JUMLAH", "Rp21.605"]
    assert ["Harga", "Rp1.450/kg"] in body["lines"]
    assert ["Petugas", "Petugas-Bm-01"] in body["lines"]  # the name of the login, not its code
    assert receipts.ESTIMATE_TEXT not in body["text"]
    assert body["extra"] == {
        "event_id": event_id,
        "applied": True,
        "price_per_kg_idr": 1450,
        "amount_idr": 21_605,
    }
    assert gw.live.version > seen  # the pages showing it are woken
    kept = gw.attendant_db.journal.get(event_id)
    assert kept is not None
    assert (kept.applied_amount_idr, kept.applied_price_idr) == (21_605, 1450)
    # The today list and the live receipt panel show the same figures.
    (row,) = (await client.get("/petugas/api/deposits")).json()
    assert (row["estimate"], row["amount_text"], row["price_text"]) == (
        False,
        "Rp21.605",
        "Rp1.450/kg",
    )
    assert row["receipt_url"] == f"/petugas/struk/setoran/{event_id}"
    # A later price change does not touch an applied deposit's receipt.
    fake.price = 9000
    await svc.sync_prices()
    again = await client.get(f"/petugas/struk/setoran/{event_id}")
    assert "Rp21.605" in again.text
    assert receipts.ESTIMATE_TEXT not in again.text


async def test_offline_the_receipt_is_an_estimate_and_the_loop_learns_later(gateway: Gw) -> None:
    svc, client, fake = gateway
    gw = svc.gw
    event_id = record(gw, 2_000)
    sent(gw)
    fake.down = True
    body = (await client.get(f"/petugas/api/struk/setoran/{event_id}")).json()
    assert body["estimate"] is True
    assert body["total"] == ["JUMLAH", "Rp8.000"]
    assert f"** {receipts.ESTIMATE_TEXT} **" in body["text"]
    assert await applied.sync_due(svc) == 0  # the outage: nothing learnt, nothing raised

    fake.down = False
    fake.ledger[event_id] = (8_000, 4000, False)
    assert applied.due(svc, datetime.now(UTC) + applied_poll()) == [event_id]
    assert await applied.check(svc, [event_id], "tok-petugas-bm-01") == 1
    body = (await client.get(f"/petugas/api/struk/setoran/{event_id}")).json()
    assert body["estimate"] is False
    assert applied.due(svc, datetime.now(UTC) + applied_poll()) == []  # nothing left to ask


def applied_poll() -> timedelta:
    """Past the wait before a deposit not applied is asked about again."""
    return timedelta(seconds=applied.RECENT_POLL_S + 1)


async def test_print_to_the_receipt_printer_and_its_errors(gateway: Gw, tmp_path: Path) -> None:
    svc, client, _ = gateway
    event_id = record(svc.gw, 1_250)
    printed = await client.post(f"/petugas/api/struk/setoran/{event_id}/cetak")
    assert printed.status_code == 200, printed.text
    assert printed.json()["printed"] is True
    written = (tmp_path / "lp0").read_bytes()
    receipt = await receipts.load(svc, "setoran", event_id)
    assert written == receipts.escpos_bytes(receipt, svc.tz, 32)
    assert written.startswith(b"\x1b@")
    assert b"Rp5.000" in written
    assert b"Siti" in written

    # Writes need the session's CSRF token.
    token = client.headers.pop("X-CSRF-Token")
    refused = await client.post(f"/petugas/api/struk/setoran/{event_id}/cetak")
    assert refused.status_code == 403
    client.headers["X-CSRF-Token"] = token

    # The printer unplugged: a clear Indonesian-first error, 503.
    (tmp_path / "lp0").unlink()
    (tmp_path / "lp0").mkdir()  # a path that cannot be written as a device
    gone = await client.post(f"/petugas/api/struk/setoran/{event_id}/cetak")
    assert gone.status_code == 503, gone.text
    assert gone.json()["detail"].startswith("printer struk di ")

    # No printer configured: said so, and the page offers the browser's print only.
    svc.gw.settings.printer = msgspec.structs.replace(svc.gw.settings.printer, kind="none")
    none = await client.post(f"/petugas/api/struk/setoran/{event_id}/cetak")
    assert none.status_code == 503
    assert "belum diatur" in none.json()["detail"]
    page = await client.get(f"/petugas/struk/setoran/{event_id}")
    assert 'id="browser-print"' in page.text
    assert 'id="escpos-print"' not in page.text
    assert "@page { size: 58mm auto; margin: 0; }" in page.text


async def test_unknown_receipts_and_kinds_are_404_pages(gateway: Gw) -> None:
    _, client, _ = gateway
    missing = await client.get("/petugas/struk/setoran/gw-nope.1")
    assert missing.status_code == 404
    assert "tidak ada di gateway ini" in missing.text
    assert (await client.get("/petugas/api/struk/setoran/gw-nope.1")).status_code == 404
    kind = await client.get("/petugas/api/struk/tidak-ada/1")
    assert kind.status_code == 404
    assert "tidak dikenal" in kind.json()["detail"]
    kept = dict(client.cookies)
    client.cookies.clear()  # signed out
    assert (await client.get("/petugas/api/struk/setoran/x")).status_code == 401
    client.cookies.update(kept)


def test_a_journal_from_before_receipts_matched_gets_the_ledger_columns(tmp_path: Path) -> None:
    """A gateway's file made before the journal kept the ledger's amount: its entries stay,
    the columns are added at start (CREATE TABLE IF NOT EXISTS does not add them)."""
    path = tmp_path / "outbox.db"
    Outbox(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE deposit_journal (event_id TEXT PRIMARY KEY, outbox_id INTEGER NOT NULL,"
            " scale_id TEXT NOT NULL, member_no TEXT, member_name TEXT, card_uid TEXT,"
            " category_code TEXT NOT NULL, net_g INTEGER NOT NULL, price_per_kg_idr INTEGER,"
            " attendant TEXT, recorded_at TEXT NOT NULL, sent_at TEXT, void_state TEXT,"
            " void_reason TEXT, void_by TEXT, void_requested_at TEXT,"
            " void_attempts INTEGER NOT NULL DEFAULT 0, void_retry_at TEXT, void_error TEXT,"
            " void_done_at TEXT);"
            "INSERT INTO deposit_journal (event_id, outbox_id, scale_id, category_code, net_g,"
            " price_per_kg_idr, recorded_at, sent_at) VALUES ('gw-1', 1, 'scale-01', 'pet', 1250,"
            " 4000, '2026-12-06T00:30:00+00:00', '2026-12-06T00:30:01+00:00');"
        )
        db.commit()
    box = Outbox(path)
    try:
        journal = AttendantDb(box).journal
        old = journal.get("gw-1")
        assert old is not None
        assert (old.applied_amount_idr, old.amount_idr) == (None, 5000)
        since = datetime(2026, 12, 6, tzinfo=UTC)
        assert journal.unapplied(since, since + timedelta(days=1)) == ["gw-1"]
        at = datetime(2026, 12, 6, 0, 30, 5, tzinfo=UTC)
        assert journal.set_applied("gw-1", 4_875, 3900, at) is True
        assert journal.set_applied("gw-1", 4_875, 3900, at) is False  # the same: no change
        got = journal.get("gw-1")
        assert got is not None
        assert (got.applied_amount_idr, got.applied_price_idr) == (4_875, 3900)
        assert journal.unapplied(since, since + timedelta(days=1)) == []
    finally:
        box.close()
