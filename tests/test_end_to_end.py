"""The spine, end to end on real processes and services.

simulated kiosk (real pty) -> `wastebank gateway` -> Mosquitto -> `wastebank ingest`
-> InfluxDB + ledger -> API.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.app import create_app
from firmware_sim.kiosk import KioskSimulator, ScriptedDeposit
from tests.auth_helpers import PASSWORD, add_users, api_settings, login
from tests.conftest import Processes, eventually, mqtt_login, settings_env, write_site
from wastebank import ledger
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.messages import DepositEvent, GatewayStatus, Topics
from wastebank.structs import decode_json, encode_json, replace

pytestmark = pytest.mark.integration

# Demo price list of bs-batu-merah (wastebank/data/demo_city.toml), Rupiah per kg.
PRICES = {"pet": 4000, "kardus": 1500, "aluminium": 6000}
CARDS = {"AMB-0001": "04A1B2C3D4", "AMB-0002": "04A1B2C3D5"}


def counts(url: str) -> tuple[int, int]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            deposits = s.scalar(select(func.count()).select_from(ledger.Deposit)) or 0
            dead = s.scalar(select(func.count()).select_from(ledger.DeadLetter)) or 0
            return deposits, dead
    finally:
        engine.dispose()


async def test_scale_bytes_become_a_balance(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    env = settings_env(mqtt_settings, influx_settings, ledger_url)
    processes.start(
        "ingest",
        ["ingest"],
        {**env, "WASTEBANK_CLIENT_ID": f"ingest-{test_id}", "WASTEBANK_BATCH_MAX_AGE_S": "0.1"},
    )

    async def ingest_subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(ingest_subscribed)

    scripted = [
        ScriptedDeposit(CARDS["AMB-0001"], "pet", 1250),
        ScriptedDeposit(CARDS["AMB-0002"], "kardus", 2340),
        ScriptedDeposit(CARDS["AMB-0001"], "aluminium", 560),
    ]
    link = tmp_path / "kiosk.tty"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id="gw-e2e",
        link=link,
        outbox=tmp_path / "outbox.db",
        credentials=mqtt_settings,
    )
    seen: list[bytes] = []
    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as observer,
        KioskSimulator(link, seed=7, rate_hz=20) as kiosk,
    ):
        await observer.subscribe(topics.deposit("bs-batu-merah", "gw-e2e"), qos=1)
        await observer.subscribe(topics.gateway_status("bs-batu-merah", "gw-e2e"), qos=1)
        processes.start(
            "gateway",
            ["gateway", "--config", str(site)],
            env,
        )
        messages = aiter(observer.messages)

        # The gateway announces itself (retained, QoS 1) once it is connected.
        async def next_message() -> aiomqtt.Message:
            return await asyncio.wait_for(anext(messages), 30)

        status = decode_json(_bytes((await next_message()).payload), GatewayStatus)
        assert status.state == "online"

        async def gateway_reading() -> bool:
            return "timbangan terhubung" in processes.log("gateway")

        await eventually(gateway_reading)
        for d in scripted:
            await kiosk.deposit(d)
        while len(seen) < len(scripted):
            seen.append(_bytes((await next_message()).payload))

    events = [decode_json(p, DepositEvent) for p in seen]
    assert [(e.card_uid, e.category_code, e.net_g) for e in events] == [
        (d.card_uid, d.category_code, d.grams) for d in scripted
    ]
    assert [e.seq for e in events] == [1, 2, 3]
    assert all(e.stable and e.raw_frames for e in events)

    async def all_applied() -> bool:
        return counts(ledger_url)[0] == len(scripted)

    await eventually(all_applied)

    # Publishing the same deposit again changes nothing; a malformed payload is dead-lettered
    # and the next good message is still applied.
    assert len({e.install for e in events}) == 1
    assert [e.event_id for e in events] == [f"gw-e2e.{events[0].install}.{n}" for n in (1, 2, 3)]
    extra = replace(events[0], event_id=f"gw-e2e.{events[0].install}.100", seq=100, net_g=1000)
    async with aiomqtt.Client(
        mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
    ) as pub:
        topic = topics.deposit("bs-batu-merah", "gw-e2e")
        await pub.publish(topic, seen[0], qos=1)
        await pub.publish(topic, b'{"kind":"deposit","net_g":"lots"}', qos=1)
        await pub.publish(topic, encode_json(extra), qos=1)

    async def extra_applied() -> bool:
        return counts(ledger_url)[0] == len(scripted) + 1

    await eventually(extra_applied)
    assert counts(ledger_url) == (len(scripted) + 1, 1)

    expected = {
        "AMB-0001": ledger.amount_for(1250, 4000) + ledger.amount_for(560, 6000) + 4000,
        "AMB-0002": ledger.amount_for(2340, 1500),
    }
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Jayapura")).date().isoformat()
    add_users(ledger_url, ("admin",))
    app = create_app(
        api_settings(mqtt=mqtt_settings, influx=influx_settings, ledger_url=ledger_url)
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as api,
    ):
        admin = await login(api, "admin", PASSWORD)
        for member_no, amount in expected.items():
            body = (await api.get(f"/api/members/{member_no}/balance", headers=admin)).json()
            assert body["balance_idr"] == amount, member_no

        async def tonnage_complete() -> bool:
            body = (
                await api.get("/api/tonnage", params={"start": today, "end": today}, headers=admin)
            ).json()
            return bool(body["total_g"] == 1250 + 2340 + 560 + 1000)

        await eventually(tonnage_complete)
        body = (
            await api.get("/api/tonnage", params={"start": today, "end": today}, headers=admin)
        ).json()
        by_cat = {g["key"]["category"]: g["net_g"] for g in body["groups"]}
        assert by_cat == {"pet": 1250 + 1000, "kardus": 2340, "aluminium": 560}


def _bytes(payload: object) -> bytes:
    assert isinstance(payload, bytes | bytearray)
    return bytes(payload)
