"""New members and price changes reach a gateway within the sync bound (``directory_poll_s``, at
most 60 s) by a conditional poll of the real central API, and at once on Refresh; members
registered and cards bound through the gateway are in its directory at once. The gateway's
attendant service runs in-process (its sync loop a task), the central API is uvicorn on a
loopback port over a ledger of its own (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from gateway.app import Gateway
from gateway.http import local_api
from gateway.http.attendant import AttendantService
from gateway.settings import AttendantSettings
from tests.auth_helpers import PASSWORD, ApiEnv, api_settings
from tests.conftest import eventually
from tests.gateway_helpers import gateway_login, gateway_settings
from wastebank.config import settings_table
from wastebank.structs import Invalid

pytestmark = pytest.mark.integration

BANK = "bs-batu-merah"
POLL_S = 1.0  # the test's poll; production's default is 30 s and at most 60 (checked below)


@pytest.fixture
def api(ledger_url: str) -> Iterator[ApiEnv]:
    with ApiEnv(ledger_url, api_settings(ledger_url=ledger_url)) as env:
        yield env


@pytest.fixture
async def service(api: ApiEnv, tmp_path: Path) -> AsyncIterator[AttendantService]:
    settings = gateway_settings(
        tmp_path,
        api_url=str(api.client.base_url),
        attendant={
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8,
            "timezone": "Asia/Jayapura",
            "directory_poll_s": POLL_S,
        },
    )
    gw = Gateway(settings)
    svc = AttendantService(gw)
    who = await svc.login("petugas-bm-01", PASSWORD)  # online: its token syncs the directory
    assert not who.offline
    task = asyncio.create_task(svc.run())
    try:
        yield svc
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await svc.aclose()
        gw.outbox.close()


def test_the_poll_is_bounded_by_a_minute() -> None:
    assert AttendantSettings().directory_poll_s <= 60
    with pytest.raises(Invalid, match=r"Expected `float` <= 60\.0 \(at directory_poll_s\)"):
        settings_table({"directory_poll_s": 61}, AttendantSettings)


async def test_a_new_price_and_member_reach_the_gateway_by_the_poll(
    api: ApiEnv, service: AttendantService
) -> None:
    d = service.db.directory
    pet = d.price("pet")
    assert pet is not None
    assert d.member("AMB-0001") is not None
    new_price = pet.price_idr + 350
    resp = api.client.put(
        f"/api/banks/{BANK}/prices/pet", json={"price_idr": new_price}, headers=api.bearer("admin")
    )
    assert resp.status_code == 200, resp.text
    resp = api.client.post(
        f"/api/banks/{BANK}/members",
        json={"member_no": "AMB-0777", "name": "Walk-in Poll", "cards": ["0B0B0B0B"]},
        headers=api.bearer("admin"),
    )
    assert resp.status_code == 201, resp.text

    async def arrived() -> bool:
        price = d.price("pet")
        return (
            price is not None and price.price_idr == new_price and d.member("AMB-0777") is not None
        )

    # the promise is 60 s with the default poll; this gateway polls every POLL_S
    await eventually(arrived, timeout=60)
    holder = d.by_card("0B0B0B0B")
    assert holder is not None
    assert holder.member_no == "AMB-0777"


async def test_refresh_brings_a_change_at_once_and_an_unchanged_list_is_a_304(
    api: ApiEnv, service: AttendantService
) -> None:
    central = service.central
    assert central is not None
    token = service.tokens["petugas-bm-01"]
    _, changed = await central.fetch_prices(BANK)
    assert changed is False  # the poll fetched it already: the central API answered 304
    members, changed = await central.fetch_members(BANK, token)
    assert changed is False
    assert "AMB-0778" not in {m.member_no for m in members}

    # the loop is slowed to the bound: only Refresh can bring the member now
    service.settings = msgspec.structs.replace(service.settings, directory_poll_s=60.0)
    await service.refresh(token)  # the refresh's own round, so the loop's clock starts now
    resp = api.client.post(
        f"/api/banks/{BANK}/members",
        json={"member_no": "AMB-0778", "name": "Walk-in Refresh"},
        headers=api.bearer("attendant_1"),
    )
    assert resp.status_code == 201, resp.text
    assert service.db.directory.member("AMB-0778") is None
    transport = httpx.ASGITransport(app=local_api.http_app(service.gw, service))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        assert await gateway_login(client, "petugas-bm-01", PASSWORD)
        resp = await client.post("/petugas/api/sync")
        assert resp.status_code == 200, resp.text
        assert resp.json()["online"] is True
        assert resp.json()["members_synced_text"].endswith("WIT")
    assert service.db.directory.member("AMB-0778") is not None


async def test_a_member_registered_and_a_card_bound_here_are_in_the_directory_at_once(
    service: AttendantService,
) -> None:
    service.settings = msgspec.structs.replace(service.settings, directory_poll_s=60.0)
    await service.refresh(service.tokens["petugas-bm-01"])
    transport = httpx.ASGITransport(app=local_api.http_app(service.gw, service))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        assert await gateway_login(client, "petugas-bm-01", PASSWORD)
        nxt = await client.get("/petugas/api/members/next-no")
        assert nxt.json() == {"member_no": "AMB-0004"}
        made = await client.post(
            "/petugas/api/members", json={"member_no": "AMB-0004", "name": "Maria", "rt": 3}
        )
        assert made.status_code == 201, made.text
        assert service.db.directory.member("AMB-0004") is not None
        again = await client.post(
            "/petugas/api/members", json={"member_no": "AMB-0004", "name": "Maria"}
        )
        assert again.status_code == 409
        assert "sudah ada" in again.json()["detail"]
        bound = await client.post("/petugas/api/members/AMB-0004/cards", json={"uid": "0c0d0e0f"})
        assert bound.status_code == 200, bound.text
        holder = service.db.directory.by_card("0C0D0E0F")
        assert holder is not None
        assert holder.member_no == "AMB-0004"
        taken = await client.post("/petugas/api/members/AMB-0004/cards", json={"uid": "04A1B2C3D4"})
        assert taken.status_code == 409
        assert "Siti" in taken.json()["detail"]  # named from the gateway's own directory

        issued = await client.post("/petugas/api/members/AMB-0004/pin", json={})
        assert issued.status_code == 200, issued.text
        slip = issued.json()
        slip_page = await client.get(slip["slip_url"])
        assert slip_page.status_code == 200
        assert slip["pin"] in slip_page.text
        assert slip_page.headers["cache-control"] == "no-store"
        assert (await client.post("/petugas/api/members/AMB-0004/pin", json={})).status_code == 409

        service.central_online = None
        service.tokens.clear()  # as after an offline login: nothing to ask the central API with
        offline = await client.post("/petugas/api/members/AMB-0004/pin", json={"reset": True})
        assert offline.status_code == 503
        assert "masuk lagi saat internet" in offline.json()["detail"]


async def test_sms_receipts_are_switched_on_and_off_from_the_members_page(
    api: ApiEnv, service: AttendantService
) -> None:
    """The SMS opt-in through the gateway (docs/attendant.md, "Nasabah di bank"): asked at
    registration (switched on right after the member is made), read and switched for a chosen
    member, with the central API's own rule for a mobile number (its 422, in Indonesian)."""

    def central_opt_in(member_no: str) -> bool:
        resp = api.client.get(f"/api/members/{member_no}", headers=api.bearer("admin"))
        assert resp.status_code == 200, resp.text
        return bool(resp.json()["sms_opt_in"])

    transport = httpx.ASGITransport(app=local_api.http_app(service.gw, service))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        assert await gateway_login(client, "petugas-bm-01", PASSWORD)
        # SMS asked without a phone: refused before a member is made
        no_phone = await client.post(
            "/petugas/api/members",
            json={"member_no": "AMB-0004", "name": "Maria", "sms_opt_in": True},
        )
        assert no_phone.status_code == 422
        assert no_phone.json()["detail"].startswith("SMS perlu nomor HP")
        gone = api.client.get("/api/members/AMB-0004", headers=api.bearer("admin"))
        assert gone.status_code == 404
        assert service.db.directory.member("AMB-0004") is None

        made = await client.post(
            "/petugas/api/members",
            json={"member_no": "AMB-0004", "name": "Maria", "phone": "081234567890"}
            | {"sms_opt_in": True},
        )
        assert made.status_code == 201, made.text
        assert (made.json()["sms_opt_in"], made.json()["sms_error"]) == (True, None)
        assert central_opt_in("AMB-0004") is True

        state = await client.get("/petugas/api/members/AMB-0004/sms")
        assert state.status_code == 200, state.text
        assert state.json() == {
            "member_no": "AMB-0004",
            "name": "Maria",
            "phone": "081234567890",
            "sms_opt_in": True,
        }
        off = await client.put("/petugas/api/members/AMB-0004/sms", json={"sms_opt_in": False})
        assert off.status_code == 200, off.text
        assert off.json()["sms_opt_in"] is False
        assert central_opt_in("AMB-0004") is False
        audit = api.client.get(
            "/api/audit", params={"entity": "member"}, headers=api.bearer("admin")
        )
        assert audit.status_code == 200, audit.text
        changes = [
            (a["actor"], a["summary"])
            for a in audit.json()
            if (a["action"], a["entity_id"]) == ("member.update", "AMB-0004")
        ]
        assert changes == [("petugas-bm-01", "sms_opt_in")] * 2  # on, then off

        # no phone on file (the demo's AMB-0003): the central API's 422, as it words it
        refused = await client.put("/petugas/api/members/AMB-0003/sms", json={"sms_opt_in": True})
        assert refused.status_code == 422
        assert refused.json()["detail"].startswith("SMS perlu nomor HP yang valid")
        assert central_opt_in("AMB-0003") is False

        # a phone that is not a mobile number: registered all the same, SMS off and why
        landline = await client.post(
            "/petugas/api/members",
            json={"member_no": "AMB-0005", "name": "Toko Sinar", "phone": "12345678"}
            | {"sms_opt_in": True},
        )
        assert landline.status_code == 201, landline.text
        assert landline.json()["sms_opt_in"] is False
        assert landline.json()["sms_error"].startswith("SMS perlu nomor HP yang valid")
        assert service.db.directory.member("AMB-0005") is not None
        assert central_opt_in("AMB-0005") is False

        service.tokens.clear()  # as after an offline login: nothing to ask the central API with
        offline = await client.get("/petugas/api/members/AMB-0004/sms")
        assert offline.status_code == 503
        assert "masuk lagi saat internet" in offline.json()["detail"]
