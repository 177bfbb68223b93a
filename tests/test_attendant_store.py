"""The attendant page's offline pieces: the login cache, the deposit journal, the void queue.

The storage on a real SQLite file; the central API behind httpx's MockTransport (a fake at the
transport seam, the rest of the client real: tests/gateway_helpers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.attendant_store import AttendantDb, MemberEntry, PriceEntry
from gateway.http import attendant
from gateway.http.attendant import AttendantService, LoginRefused, kg, rupiah, tanggal, views
from gateway.http.attendant import service as service_module
from gateway.kiosk import DepositCandidate
from gateway.outbox import Outbox
from tests.gateway_helpers import FakeCentral, attendant_service, gateway_settings
from wastebank.money_rules import amount_for

BANK = "bs-batu-merah"
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 10.00 WIT


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db")
    yield box
    box.close()


def _add(box: Outbox, db: AttendantDb, event: int, at: datetime = NOW) -> int:
    with box.transaction() as write:
        seq = write.next_seq()
        row_id = write.put("t/deposit", json.dumps({"seq": seq}).encode())
        db.journal.add(
            event_id=f"gw-{seq}",
            outbox_id=row_id,
            scale_id="scale-01",
            member_no="AMB-0001",
            member_name="Siti Latuconsina",
            card_uid=None,
            category_code="pet",
            net_g=1250,
            price_per_kg_idr=4000,
            attendant="petugas-bm-01",
            recorded_at=at,
        )
    assert seq == event
    return seq


# ---- formats ------------------------------------------------------------------------------------


def test_indonesian_formats() -> None:
    assert rupiah(12345) == "Rp12.345"
    assert rupiah(-5000) == "-Rp5.000"
    assert kg(1250) == "1,25 kg"
    assert kg(999_999) == "999,999 kg"  # exact: never rounded up to a weight not weighed
    assert tanggal(NOW, ZoneInfo("Asia/Jayapura")) == "Senin, 30 November 2026 10.00 WIT"
    assert tanggal(NOW, ZoneInfo("Asia/Jakarta")) == "Senin, 30 November 2026 08.00 WIB"
    assert amount_for(1250, 4000) == 5000
    assert amount_for(1, 500) == 1  # half up, as the ledger


# ---- login cache --------------------------------------------------------------------------------


def test_login_cache_expires_and_forgets(outbox: Outbox) -> None:
    db = AttendantDb(outbox)
    db.logins.put(
        "petugas-bm-01",
        "$argon2id$...",
        role="attendant",
        name="Nurlela",
        bank_codes=["bs-rijali", BANK],
        now=NOW,
        ttl=timedelta(days=14),
    )
    got = db.logins.get("petugas-bm-01", NOW + timedelta(days=13))
    assert got is not None
    assert got.bank_codes == (BANK, "bs-rijali")
    assert got.password_hash == "$argon2id$..."
    assert db.logins.get("petugas-bm-01", NOW + timedelta(days=14)) is None
    # expired: gone for good, even for an earlier clock
    assert db.logins.get("petugas-bm-01", NOW) is None
    assert db.logins.get("nobody", NOW) is None


def test_secret_is_made_once_and_kept(outbox: Outbox) -> None:
    first = AttendantDb(outbox).secret("attendant-session")
    assert len(first) == 32
    assert AttendantDb(outbox).secret("attendant-session") == first
    assert AttendantDb(outbox).secret("other") != first


# ---- directory ----------------------------------------------------------------------------------


def test_directory_search_by_name_number_and_card(outbox: Outbox) -> None:
    d = AttendantDb(outbox).directory
    assert d.synced_at("members") is None
    d.replace_members(
        BANK,
        [
            MemberEntry("AMB-0001", "Siti Latuconsina", "individual", ("04a1b2c3d4",)),
            MemberEntry("AMB-0002", "Yohanes Pattiasina", "individual", ("04A1B2C3D5",)),
            MemberEntry("AMB-0100", "Kelompok 100%_Bersih", "group"),
        ],
        NOW,
    )
    assert d.synced_at("members") == NOW
    assert [m.member_no for m in d.search("siti")] == ["AMB-0001"]
    assert [m.member_no for m in d.search("amb-000")] == ["AMB-0001", "AMB-0002"]
    assert [m.member_no for m in d.search("04a1b2c3d5")] == ["AMB-0002"]
    assert [m.member_no for m in d.search("%")] == ["AMB-0100"]  # a wildcard is a character
    assert d.search("   ") == []
    card = d.by_card("04A1B2C3D4")
    assert card is not None
    assert card.cards == ("04A1B2C3D4",)
    # a new list replaces the old one
    d.replace_members(BANK, [MemberEntry("AMB-0002", "Yohanes", "individual")], NOW)
    assert d.by_card("04A1B2C3D4") is None
    assert d.member("AMB-0001") is None
    d.replace_prices([PriceEntry("pet", "Botol PET bersih", "kg", 4000)], NOW)
    assert [p.price_idr for p in d.prices()] == [4000]
    assert d.price("kardus") is None


# ---- journal ------------------------------------------------------------------------------------


def test_journal_pending_until_acknowledged_then_sent(outbox: Outbox) -> None:
    db = AttendantDb(outbox)
    _add(outbox, db, 1)
    _add(outbox, db, 2, NOW + timedelta(minutes=1))
    day = (NOW - timedelta(hours=2), NOW + timedelta(hours=2))
    assert [(e.event_id, e.status) for e in db.journal.between(*day)] == [
        ("gw-2", "pending"),
        ("gw-1", "pending"),
    ]
    rows = outbox.peek()
    outbox.remove_many([rows[0].id])
    assert db.journal.mark_sent([rows[0].id], NOW) == 1
    assert db.journal.mark_sent([rows[0].id], NOW) == 0  # once
    e1 = db.journal.get("gw-1")
    assert e1 is not None
    assert (e1.status, e1.sent_at, e1.amount_idr) == ("sent", NOW, 5000)
    # the outbox's bound dropped the other before it was sent: shown, never silently "pending"
    outbox.remove_many([rows[1].id])
    e2 = db.journal.get("gw-2")
    assert e2 is not None
    assert e2.status == "dropped"
    assert db.journal.between(NOW + timedelta(hours=3), NOW + timedelta(hours=4)) == []


def test_journal_entry_is_in_the_outbox_transaction(outbox: Outbox) -> None:
    AttendantDb(outbox)

    def store() -> None:
        with outbox.transaction() as write:
            write.next_seq()
            write.put("t/deposit", b"{}")
            raise RuntimeError("disk full")  # writing the journal entry failed

    with pytest.raises(RuntimeError):
        store()
    assert len(outbox) == 0
    assert outbox.last_seq == 0


# ---- void queue ---------------------------------------------------------------------------------


def test_void_queue_waits_for_the_broker_then_retries(outbox: Outbox) -> None:
    db = AttendantDb(outbox)
    j = db.journal
    _add(outbox, db, 1)
    with pytest.raises(KeyError):
        j.request_void("gw-9", "salah", "petugas-bm-01", NOW)
    entry = j.request_void("gw-1", "salah nasabah", "petugas-bm-01", NOW)
    assert (entry.void_state, entry.void_reason) == ("pending", "salah nasabah")
    with pytest.raises(ValueError, match="sudah"):
        j.request_void("gw-1", "lagi", "petugas-bm-01", NOW)
    assert j.pending_voids() == 1
    assert j.due_voids(NOW) == []  # the deposit itself has not left the gateway yet
    (row,) = outbox.peek()
    outbox.remove_many([row.id])
    j.mark_sent([row.id], NOW)
    (due,) = j.due_voids(NOW)
    assert (due.event_id, due.by, due.attempts) == ("gw-1", "petugas-bm-01", 0)
    j.void_retry("gw-1", "not in the ledger yet", NOW + timedelta(seconds=10))
    assert j.due_voids(NOW + timedelta(seconds=5)) == []
    (due,) = j.due_voids(NOW + timedelta(seconds=10))
    assert due.attempts == 1
    j.void_done("gw-1", NOW)
    done = j.get("gw-1")
    assert done is not None
    assert (done.void_state, done.void_error) == ("done", None)
    assert j.pending_voids() == 0
    assert j.prune(NOW + timedelta(days=1)) == 1


# ---- the service: logins and voids against a fake central API ----------------------------------


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[AttendantService, FakeCentral]]:
    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc:
        yield svc, fake


async def test_login_online_caches_then_works_offline(
    service: tuple[AttendantService, FakeCentral],
) -> None:
    svc, fake = service
    who = await svc.login("petugas-bm-01", "kata-sandi")
    assert (who.role, who.offline) == ("attendant", False)
    cached = svc.db.logins.get("petugas-bm-01", datetime.now(UTC))
    assert cached is not None
    assert "kata-sandi" not in cached.password_hash
    assert cached.password_hash.startswith("$argon2id$")
    assert svc.db.directory.member("AMB-0001") is not None  # fetched at login
    assert svc.tokens == {"petugas-bm-01": "tok-petugas-bm-01"}

    fake.down = True
    offline = await svc.login("petugas-bm-01", "kata-sandi")
    assert offline.offline
    assert svc.central_online is False
    with pytest.raises(LoginRefused) as wrong:
        await svc.login("petugas-bm-01", "salah")
    assert wrong.value.status == 401
    with pytest.raises(LoginRefused) as unknown:
        await svc.login("petugas-nsw-01", "kata-sandi")  # never logged in here
    assert unknown.value.status == 401

    # The session cookie names the attendant, and only on this gateway.
    cookie = svc.session_cookie(offline)
    assert svc.who(cookie) == offline
    assert svc.who(cookie + "x") is None
    assert svc.who(None) is None


async def test_login_refuses_other_banks_and_forgets_a_changed_password(
    service: tuple[AttendantService, FakeCentral],
) -> None:
    svc, fake = service
    with pytest.raises(LoginRefused) as other:
        await svc.login("petugas-nsw-01", "kata-sandi")
    assert other.value.status == 403
    assert svc.db.logins.get("petugas-nsw-01", datetime.now(UTC)) is None

    await svc.login("petugas-bm-01", "kata-sandi")
    fake.users["petugas-bm-01"] = ("baru", "attendant", [BANK])
    with pytest.raises(LoginRefused):
        await svc.login("petugas-bm-01", "kata-sandi")  # the old one, refused centrally
    assert svc.db.logins.get("petugas-bm-01", datetime.now(UTC)) is None
    fake.down = True
    with pytest.raises(LoginRefused):
        await svc.login("petugas-bm-01", "kata-sandi")  # and no longer offline either


async def test_login_attempts_are_limited(
    service: tuple[AttendantService, FakeCentral],
) -> None:
    svc, fake = service
    fake.down = True
    for _ in range(svc.settings.max_login_failures):
        with pytest.raises(LoginRefused):
            await svc.login("petugas-bm-01", "salah")
    with pytest.raises(LoginRefused) as limited:
        await svc.login("petugas-bm-01", "kata-sandi")
    assert limited.value.status == 429


async def test_voids_are_queued_while_offline_and_sent_with_the_attendants_token(
    service: tuple[AttendantService, FakeCentral], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, fake = service
    gw = svc.gw
    await svc.login("petugas-bm-01", "kata-sandi")
    reader = gw.readers["scale-01"]
    gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-bm-01")  # Siti, 4000 a kg: the directory's
    candidate = DepositCandidate(None, "pet", 1250, 0, True, "gs_nt", ("x",), member_no="AMB-0001")
    assert gw.recorder.store_deposit(reader, candidate) == 1
    entry = gw.attendant_db.journal.get(gw.event_id(1))
    assert entry is not None
    assert (entry.attendant, entry.member_name, entry.amount_idr) == ("petugas-bm-01", "Siti", 5000)
    view = views.live_view(svc, reader)
    assert view.last_deposit is not None
    assert view.last_deposit.status_text == "menunggu / pending"

    event_id = entry.event_id
    gw.attendant_db.journal.request_void(event_id, "salah jenis", "petugas-bm-01", NOW)
    fake.down = True
    await svc.send_voids()  # not sent by the broker yet: nothing to do
    (row,) = [r for r in gw.outbox.peek() if r.topic.endswith("deposit")]
    gw.outbox.remove_many([row.id])
    gw.attendant_db.journal.mark_sent([row.id], datetime.now(UTC))
    await svc.send_voids()  # the central API is down: still pending
    assert gw.attendant_db.journal.pending_voids() == 1

    fake.down = False
    fake.void_status = 404  # the ingester has not applied it yet: tried again later
    monkeypatch.setattr(service_module, "VOID_RETRY_S", 0.0)
    await svc.send_voids()
    assert gw.attendant_db.journal.pending_voids() == 1
    fake.void_status = 200
    await svc.send_voids()
    assert fake.voids == [(event_id, "petugas-bm-01"), (event_id, "petugas-bm-01")]
    done = gw.attendant_db.journal.get(event_id)
    assert done is not None
    assert done.void_state == "done"
    assert views.deposit_view(svc, done).void_text == "dibatalkan / voided"


async def test_live_stream_ends_when_the_page_goes_and_at_shutdown(
    service: tuple[AttendantService, FakeCentral],
) -> None:
    """Server-Sent Events over real uvicorn: a reading is pushed at once; the stream's
    generator ends when the client disconnects, and every stream ends when the gateway stops."""
    from gateway.http import local_api
    from tests.conftest import eventually, free_port

    svc, _ = service
    gw = svc.gw
    port = free_port()
    gw.settings.http_port = port
    serving = asyncio.create_task(local_api.serve(gw, svc))
    cookie = svc.session_cookie(attendant.Who("petugas-bm-01", "N", "attendant", False))
    url = "/petugas/api/scales/scale-01/live"

    async def lines(resp: httpx.Response) -> AsyncIterator[dict[str, object]]:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])

    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Cookie": f"{attendant.COOKIE}={cookie}"},
        timeout=5,
    ) as client:

        async def up() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up)
        forged = {"Cookie": f"{attendant.COOKIE}=x"}
        assert (await client.get(url, headers=forged)).status_code == 401
        assert (await client.get("/petugas/api/scales/nope/live")).status_code == 404

        reader = gw.readers["scale-01"]
        async with client.stream("GET", url) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = lines(resp)
            first = await anext(events)
            assert first["weight_text"] == "—"
            gw.feed(reader, b"ST,GS,+0001.25kg\r\n")
            gw.feed(reader, b"ST,GS,+0001.25kg\r\n")
            pushed = await anext(events)
            while pushed["grams"] != 1250:
                pushed = await anext(events)
            assert pushed["weight_text"] == "1,25 kg"
            assert svc.streams == 1

        async def closed() -> bool:
            gw.live.notify()
            return svc.streams == 0

        await eventually(closed)  # the page went away: its generator is gone

        async with client.stream("GET", url) as resp:
            events = lines(resp)
            await anext(events)
            serving.cancel()  # the gateway stops: the stream ends, it is not cut mid-event
            rest = [e async for e in events]
            assert all("scale_id" in e for e in rest)
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    assert svc.streams == 0
