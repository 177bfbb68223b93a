"""The API on the real InfluxDB: balances, tonnage by local day, latest TPS fill, health; each
read as the role that may make it (tests/test_authz_matrix.py covers who may not)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.orm import Session

from api.app import create_app
from api.measured import local_day_bounds
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, login, with_csrf
from tests.conftest import WIT, deposit_event, event_line
from tests.ledger_helpers import apply_deposit
from wastebank import alerts, ledger
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx, fill_line
from wastebank.messages import FillReading
from wastebank.passbook import kg, rupiah


@pytest.fixture
async def client(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ledger_url)
    app = create_app(
        api_settings(mqtt=mqtt_settings, influx=influx_settings, ledger_url=ledger_url)
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def test_indonesian_number_formats() -> None:
    assert rupiah(1234567) == "Rp1.234.567"
    assert rupiah(-500) == "-Rp500"
    assert kg(1250) == "1,25 kg"


def test_local_day_bounds_follow_the_city_zone() -> None:
    lo, hi = local_day_bounds(
        datetime(2026, 11, 1).date(),  # noqa: DTZ001 - a calendar date
        datetime(2026, 11, 30).date(),  # noqa: DTZ001
        "Asia/Jayapura",
    )
    # 1 November 00:00 WIT is 31 October 15:00 UTC; the range ends at 1 December 00:00 WIT.
    assert lo.astimezone(UTC) == datetime(2026, 10, 31, 15, 0, tzinfo=UTC)
    assert hi.astimezone(UTC) == datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


@pytest.mark.integration
async def test_tonnage_buckets_by_local_day_in_wit(
    client: httpx.AsyncClient, influx_settings: InfluxSettings
) -> None:
    def at(month: int, day: int, hour: int, minute: int) -> datetime:
        return datetime(2026, month, day, hour, minute, tzinfo=WIT)

    events = [
        deposit_event(1, at=at(10, 31, 23, 50), net_g=1000),  # October, local time
        deposit_event(2, at=at(11, 1, 0, 30), net_g=2000),  # 00:30 WIT 1 Nov = 31 Oct UTC
        deposit_event(3, at=at(11, 1, 10, 0), net_g=500, category="kardus"),
        deposit_event(4, at=at(11, 2, 8, 0), net_g=250),
        deposit_event(5, at=at(12, 1, 0, 5), net_g=4000),  # December, local time
    ]
    influx = Influx(influx_settings)
    await influx.ensure_database()
    await influx.write([event_line(e, kecamatan="Sirimau", amount_idr=0) for e in events])
    await influx.aclose()

    dlh = await login(client, "dlh-ambon", PASSWORD)
    resp = await client.get(
        "/api/tonnage", params={"start": "2026-11-01", "end": "2026-11-30"}, headers=dlh
    )
    assert resp.status_code == 200
    body = resp.json()
    assert body["timezone"] == "Asia/Jayapura"
    assert body["total_g"] == 2000 + 500 + 250
    by_cat = {g["key"]["category"]: (g["net_g"], g["deposits"]) for g in body["groups"]}
    assert by_cat == {"pet": (2250, 2), "kardus": (500, 1)}

    resp = await client.get(
        "/api/tonnage",
        params={"start": "2026-11-01", "end": "2026-11-02", "group_by": "bank", "interval": "day"},
        headers=dlh,
    )
    days = [(g["period_start"][:10], g["net_g"]) for g in resp.json()["groups"]]
    assert days == [("2026-11-01", 2500), ("2026-11-02", 250)]
    assert resp.json()["groups"][0]["period_start"].endswith("+09:00")

    resp = await client.get(
        "/api/tonnage", params={"start": "2026-11-02", "end": "2026-11-01"}, headers=dlh
    )
    assert resp.status_code == 422


@pytest.mark.integration
async def test_balance_transactions_and_member_page(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    nine = datetime(2026, 11, 23, 9, 0, tzinfo=WIT)
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        apply_deposit(s, deposit_event(1, at=nine, net_g=1250))
        apply_deposit(
            s, deposit_event(2, at=nine + timedelta(minutes=5), net_g=2000, category="kardus")
        )
        s.commit()
    engine.dispose()

    assert (await client.get("/api/members/AMB-0001/balance")).status_code == 401
    siti = await login(client, "amb-0001", PIN)  # a member number typed in lower case
    bal = (await client.get("/api/members/AMB-0001/balance", headers=siti)).json()
    assert bal["balance_idr"] == 5000 + 3000  # 1.25 kg x Rp4,000 + 2 kg x Rp1,500
    assert bal["deposits"] == 2
    assert bal["name"] == "Siti Latuconsina"
    txs = (await client.get("/api/members/AMB-0001/transactions", headers=siti)).json()
    assert [t["event_id"] for t in txs] == ["gw-01-2", "gw-01-1"]
    assert txs[0]["measured_at"].endswith("Z") or txs[0]["measured_at"].endswith("+00:00")

    # the page asks for a login first, then shows the balance
    page = await client.get("/nasabah/AMB-0001")
    assert page.status_code == 303
    assert page.headers["location"] == "/masuk?next=/nasabah/AMB-0001"
    form = {"username": "AMB-0001", "password": PIN, "next": "/nasabah/AMB-0001"}
    signed_in = await client.post("/masuk", data=await with_csrf(client, form))
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/nasabah/AMB-0001"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # served over http here; https gets Secure
    page = await client.get("/nasabah/AMB-0001")
    assert page.status_code == 200
    assert "Rp8.000" in page.text
    assert "Saldo" in page.text
    assert "23 Nov 2026 09.05 WIT" in page.text  # shown in WIT
    assert page.headers["cache-control"] == "private, no-store"
    # a form without the CSRF token is refused
    csrf_less = await client.post("/keluar")
    assert csrf_less.status_code == 403
    assert "CSRF" in csrf_less.text or "Formulir" in csrf_less.text
    client.cookies.clear()

    admin = await login(client, "admin", PASSWORD)
    missing = await client.get("/api/members/NOPE/balance", headers=admin)
    assert missing.status_code == 404
    assert "tidak ditemukan" in missing.json()["detail"]


@pytest.mark.integration
async def test_latest_fill_per_sensor(
    client: httpx.AsyncClient, influx_settings: InfluxSettings
) -> None:
    base = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    readings = [
        FillReading(
            reading_id=f"{sensor}-{i}",
            sensor_id=sensor,
            seq=i,
            tps_code=tps,
            measured_at=base + timedelta(minutes=15 * i),
            distance_mm=1000,
            fillingLevel=level,
        )
        for i, (tps, sensor, level) in enumerate(
            [("tps-a", "us-01", 0.2), ("tps-a", "us-01", 0.45), ("tps-b", "us-02", 0.9)], start=1
        )
    ]
    influx = Influx(influx_settings)
    await influx.ensure_database()
    await influx.write([fill_line(r) for r in readings])
    await influx.aclose()

    dlh = await login(client, "dlh-ambon", PASSWORD)
    latest = (await client.get("/api/tps/latest", headers=dlh)).json()
    assert [(t["tps_code"], t["filling_level"]) for t in latest] == [
        ("tps-a", 0.45),
        ("tps-b", 0.9),
    ]


@pytest.mark.integration
async def test_system_alerts_are_for_admins_and_counted_in_health(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            raised = alerts.raise_alert(
                s, alerts.AlertCode.GATEWAY_CLASH, "gw-01", "dua / two", {"ids": ["a", "b"]}
            )
            again = alerts.raise_alert(s, alerts.AlertCode.GATEWAY_CLASH, "gw-01", "lagi / again")
            s.commit()
    finally:
        engine.dispose()
    assert raised is not None
    assert again is None  # active already: raised once
    assert (await client.get("/api/alerts")).status_code == 401
    citizen = await login(client, "AMB-0001", PIN)
    assert (await client.get("/api/alerts", headers=citizen)).status_code == 403
    admin = await login(client, "admin", PASSWORD)
    (one,) = (await client.get("/api/alerts", headers=admin)).json()
    assert (one["code"], one["subject"], one["detail"]) == (
        "gateway_clash",
        "gw-01",
        {"ids": ["a", "b"]},
    )
    assert (await client.get("/health")).json()["alerts"] == {"active": 1}
    health = (await client.get("/health", headers=admin)).json()
    assert health["alerts"] == {"active": 1, "by_code": {"gateway_clash": 1}}


@pytest.mark.integration
async def test_health_reports_each_part(client: httpx.AsyncClient, ledger_url: str) -> None:
    # Anyone: each part ok or not, nothing about where the parts are or what they run.
    body = (await client.get("/health")).json()
    assert body == {
        "status": "ok",
        "broker": {"ok": True},
        "influxdb": {"ok": True},
        "ledger": {"ok": True},
        "reconciliation": None,  # no ledger-InfluxDB comparison yet (tests/test_reconcile.py)
        "alerts": {"active": 0},
    }
    citizen = await login(client, "AMB-0001", PIN)
    assert (await client.get("/health", headers=citizen)).json() == body
    # An admin: the details.
    admin = await login(client, "admin", PASSWORD)
    body = (await client.get("/health", headers=admin)).json()
    assert body["status"] == "ok"
    assert body["influxdb"]["version"].startswith("1.")
    assert body["broker"]["ok"]
    assert body["broker"]["address"].startswith("127.0.0.1:")
    assert body["ledger"] == {"ok": True, "dialect": ledger_url.split(":")[0].split("+")[0]}
    assert body["alerts"] == {"active": 0, "by_code": {}}

    broken = create_app(
        api_settings(
            mqtt=MqttSettings(port=1),
            influx=InfluxSettings(url="http://127.0.0.1:1"),
            ledger_url=ledger_url,
        )
    )
    async with LifespanManager(broken) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert (await c.get("/health")).json() == {
                "status": "degraded",
                "broker": {"ok": False},
                "influxdb": {"ok": False},
                "ledger": {"ok": True},
                "reconciliation": None,
                "alerts": {"active": 0},
            }
            admin = await login(c, "admin", PASSWORD)
            body = (await c.get("/health", headers=admin)).json()
    assert body["status"] == "degraded"
    assert "error" in body["broker"]
    assert not body["broker"]["ok"]
    assert not body["influxdb"]["ok"]
    assert body["ledger"]["ok"]
