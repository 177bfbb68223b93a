"""The fifth review: the gateway told the attendant a deposit was voided ("dibatalkan /
voided") when the central API had refused the void with a 409 because the member's money was
withdrawn or the waste sold; the member kept the Rupiah and nothing flagged it. Only the 409 of
a deposit voided already (an earlier try's answer lost) is a done void; any other 409 is a
refusal shown on the deposit (gateway/http/attendant/service.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.deps import refusal_detail
from gateway.http.attendant import AttendantService, views
from gateway.kiosk import DepositCandidate
from tests.gateway_helpers import FakeCentral, attendant_service, gateway_settings
from wastebank import ledger

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[AttendantService, FakeCentral]]:
    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc:
        yield svc, fake


async def _void_sent(svc: AttendantService) -> str:
    """A deposit of Siti's, sent by the broker, whose void the attendant asks for."""
    gw = svc.gw
    await svc.login("petugas-bm-01", "kata-sandi")
    reader = gw.readers["scale-01"]
    gw.recorder.arm(reader, "AMB-0001", "pet", "petugas-bm-01")
    candidate = DepositCandidate(None, "pet", 1250, 0, True, "gs_nt", ("x",), member_no="AMB-0001")
    assert gw.recorder.store_deposit(reader, candidate) == 1
    event_id = gw.event_id(1)
    gw.attendant_db.journal.request_void(event_id, "salah nasabah", "petugas-bm-01", NOW)
    (row,) = [r for r in gw.outbox.peek() if r.topic.endswith("deposit")]
    gw.outbox.remove_many([row.id])
    gw.attendant_db.journal.mark_sent([row.id], datetime.now(UTC))
    return event_id


@pytest.mark.parametrize(
    "refusal",
    [
        ledger.InsufficientBalance("voiding gw-01.x.1 would leave AMB-0001 below Rp0"),
        ledger.InsufficientStock("voiding gw-01.x.1 would leave bs-batu-merah below 0 g of pet"),
    ],
)
async def test_a_void_the_ledger_refuses_is_shown_refused_not_voided(
    service: tuple[AttendantService, FakeCentral], refusal: ledger.LedgerError
) -> None:
    svc, fake = service
    event_id = await _void_sent(svc)
    fake.void_status, fake.void_detail = 409, refusal_detail(refusal)  # the API's own words
    await svc.send_voids()
    entry = svc.gw.attendant_db.journal.get(event_id)
    assert entry is not None
    assert (entry.void_state, entry.void_error) == ("refused", refusal_detail(refusal))
    view = views.deposit_view(svc, entry)
    assert view.void_text == "batal ditolak / void refused"
    assert view.void_error == refusal_detail(refusal)
    assert svc.gw.attendant_db.journal.pending_voids() == 0  # not sent again and again


async def test_a_void_done_already_there_is_done(
    service: tuple[AttendantService, FakeCentral],
) -> None:
    """The central API's answer to an earlier try was lost: its 409 "already voided" now."""
    svc, fake = service
    event_id = await _void_sent(svc)
    fake.void_status = 409
    fake.void_detail = refusal_detail(ledger.AlreadyVoided(f"deposit {event_id} is already voided"))
    await svc.send_voids()
    entry = svc.gw.attendant_db.journal.get(event_id)
    assert entry is not None
    assert (entry.void_state, entry.void_error) == ("done", None)
    assert views.deposit_view(svc, entry).void_text == "dibatalkan / voided"
