"""A waste bank with a plain indicator: the attendant-assisted flow, calibration and health.

Real processes and services: a simulated indicator on a pty, `wastebank gateway` with its site file
and local endpoint, Mosquitto, `wastebank ingest`, the ledger; the attendant uses the real CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiomqtt
import httpx
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from firmware_sim.kiosk import KioskSimulator
from firmware_sim.scales import QUIET, ScaleSimulator
from tests.auth_helpers import PASSWORD, ApiEnv, api_settings
from tests.conftest import Processes, eventually, free_port, mqtt_login, settings_env, write_site
from tests.gateway_helpers import gateway_login
from wastebank import ledger
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.messages import DepositEvent, GatewayAlert, GatewayHealth, Topics
from wastebank.structs import decode_json

pytestmark = pytest.mark.integration

BANK, GATEWAY = "bs-batu-merah", "gw-site"


def cli(*args: str) -> str:
    """`wastebank ...`; `attend` and `calibrate` log in as the bank's attendant (the password on
    their prompt, the first time: then the session kept by ``central_api``'s settings)."""
    result = CliRunner().invoke(app, list(args), input=f"{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def central_api(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[ApiEnv]:
    """The central API the gateway forwards the attendant's login to; the CLI's login name and
    its session file, as an attendant's shell would have them."""
    with ApiEnv(ledger_url, api_settings(ledger_url=ledger_url)) as api:
        monkeypatch.setenv("WASTEBANK_GATEWAY_USER", api.creds["attendant_1"][0])
        monkeypatch.setenv("WASTEBANK_GATEWAY_SESSION_FILE", str(tmp_path / "sessions.json"))
        yield api


async def test_attendant_flow_with_calibration_and_health(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    central_api: ApiEnv,
    tmp_path: Path,
    test_id: str,
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    env = settings_env(mqtt_settings, influx_settings, ledger_url)
    processes.start("ingest", ["ingest"], {**env, "WASTEBANK_CLIENT_ID": f"ingest-{test_id}"})

    async def ingest_subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(ingest_subscribed)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    link = tmp_path / "indicator.tty"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id=GATEWAY,
        link=link,
        outbox=tmp_path / "outbox.db",
        api_url=str(central_api.client.base_url),
        flow="attendant",
        http_port=port,
        health_interval_s=0.5,
        credentials=mqtt_settings,
    )
    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as observer,
        KioskSimulator(link, seed=3, speed=4) as scale,
        httpx.AsyncClient(base_url=base, timeout=5) as gw,
    ):
        await observer.subscribe(topics.deposit(BANK, GATEWAY), qos=1)
        processes.start("gateway", ["gateway", "--config", str(site)], env)
        # every route but /health needs the attendant's session (and writes its CSRF token)
        await eventually(lambda: gateway_login(gw, *central_api.creds["attendant_1"]))

        async def view() -> dict[str, object]:
            try:
                (only,) = (await gw.get("/scales")).json()
            except httpx.HTTPError:
                return {}
            assert isinstance(only, dict)
            return only

        def shows(pred: Callable[[dict[str, object]], bool]) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return pred(await view())

            return check

        await eventually(shows(lambda v: v.get("connected") is True and v.get("grams") == 0))

        # Calibration check with a 10 kg reference mass (the simulated scale reads true).
        scale.place_load(10_000)
        await eventually(shows(lambda v: v["stable"] is True and v["grams"] == 10_000))
        out = cli("calibrate", "--gateway", base, "--scale", "scale-01", "--reference-g", "10000")
        assert "cal-1" in out
        assert "+0 g" in out
        scale.place_load(0)
        await eventually(shows(lambda v: v["stable"] is True and v["grams"] == 0))

        # The attendant names the member and category; the next settled load is the deposit.
        cli("attend", "--gateway", base, "--scale", "scale-01", "--member", "AMB-0002",
            "--category", "kardus")  # fmt: skip
        scale.place_load(3450)
        first = decode_json(await _next_payload(observer), DepositEvent)
        assert (first.member_no, first.card_uid, first.flow) == ("AMB-0002", None, "attendant")
        assert (first.category_code, first.net_g, first.seq) == ("kardus", 3450, 1)
        assert first.calibration_version == "cal-1"
        assert first.stable

        # Armed again while the first load is still on: nothing happens until the scale has
        # been back at zero, so the same load is never counted twice.
        cli("attend", "--gateway", base, "--scale", "scale-01", "--member", "AMB-0002",
            "--category", "pet")  # fmt: skip
        await eventually(shows(lambda v: v["waiting_for_zero"] is True))
        scale.place_load(0)
        await eventually(shows(lambda v: v["waiting_for_zero"] is False and v["grams"] == 0))
        scale.place_load(1200)
        second = decode_json(await _next_payload(observer), DepositEvent)
        assert (second.category_code, second.net_g, second.seq) == ("pet", 1200, 2)

        # The endpoint refuses what makes no sense, with a reason.
        missing = await gw.post("/scales/nope/arm", json={"member_no": "X", "category_code": "pet"})
        assert missing.status_code == 404
        bad = await gw.post("/scales/scale-01/arm", json={"member_no": "AMB-0002"})
        assert bad.status_code == 422

        # Health is retained: a new subscriber gets the latest report at once.
        await observer.subscribe(topics.gateway_health(BANK, GATEWAY), qos=1)
        health = decode_json(await _next_payload(observer), GatewayHealth)
        (scale_health,) = health.scales
        assert health.deposits_stored >= 0
        assert scale_health.connected
        assert scale_health.frames_parsed > 0

        async def reports_both() -> bool:
            h = decode_json(await _next_payload(observer), GatewayHealth)
            return h.deposits_stored == 2 and h.outbox_depth == 0

        await eventually(reports_both)

    async def applied() -> bool:
        engine = ledger.make_engine(ledger_url)
        try:
            with Session(engine) as s:
                return ledger.member_balance(s, "AMB-0002") == 5175 + 4800
        finally:
            engine.dispose()

    # 3,450 g kardus @ Rp1,500 = Rp5,175; 1,200 g PET @ Rp4,000 = Rp4,800.
    await eventually(applied)


async def _next_payload(client: aiomqtt.Client, timeout: float = 30) -> bytes:
    message = await asyncio.wait_for(anext(aiter(client.messages)), timeout)
    assert isinstance(message.payload, bytes | bytearray)
    return bytes(message.payload)


async def test_plain_indicator_on_auto_with_computed_stability_and_zero_drift_alert(
    processes: Processes, mqtt_settings: MqttSettings, central_api: ApiEnv, tmp_path: Path
) -> None:
    """A Yaohua XK3190 (no stability flag) on `protocol = "auto"`: the gateway recognises it,
    decides stability from the readings, takes the attendant's deposit, and raises a zero-drift
    alert once when the empty scale slowly drifts, and clears it once when it comes back."""
    topics = Topics(mqtt_settings.topic_prefix)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    link = tmp_path / "yaohua.tty"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id=GATEWAY,
        link=link,
        outbox=tmp_path / "outbox.db",
        api_url=str(central_api.client.base_url),
        flow="attendant",
        protocol="auto",
        http_port=port,
        credentials=mqtt_settings,
    )
    deposits: list[DepositEvent] = []
    alerts: list[GatewayAlert] = []
    async with (
        aiomqtt.Client(
            mqtt_settings.host, mqtt_settings.port, **mqtt_login(mqtt_settings)
        ) as observer,
        ScaleSimulator(link, "yh_stx", seed=4, speed=5, noise=QUIET) as scale,
        httpx.AsyncClient(base_url=base, timeout=5) as gw,
    ):
        await observer.subscribe(topics.deposit(BANK, GATEWAY), qos=1)
        await observer.subscribe(topics.gateway_alert(BANK, GATEWAY), qos=1)
        processes.start("gateway", ["gateway", "--config", str(site)], settings_env(mqtt_settings))
        await eventually(lambda: gateway_login(gw, *central_api.creds["attendant_1"]))

        async def shows(**want: object) -> bool:
            try:
                (v,) = (await gw.get("/scales")).json()
            except httpx.HTTPError:
                return False
            return all(v.get(k) == x for k, x in want.items())

        async def idle_at(grams: int) -> None:
            await scale.place(grams)
            await eventually(lambda: shows(grams=grams, stable=True))

        await eventually(lambda: shows(protocol="yh_stx", grams=0, stable=True))
        cli("attend", "--gateway", base, "--scale", "scale-01", "--member", "AMB-0001",
            "--category", "pet")  # fmt: skip
        await scale.place(2500)
        deposits.append(decode_json(await _next_payload(observer), DepositEvent))
        await idle_at(0)

        # Slow drift: each step is inside the zero band, so the zero follows it (a load would not).
        for grams in (10, 20, 30, 40, 30, 20, 10):
            await idle_at(grams)
        while len(alerts) < 2:
            alerts.append(decode_json(await _next_payload(observer), GatewayAlert))

    (deposit,) = deposits
    assert (deposit.protocol, deposit.net_g, deposit.member_no) == ("yh_stx", 2500, "AMB-0001")
    assert deposit.stable  # decided by the gateway: the format has no flag
    assert [(a.code, a.state) for a in alerts] == [
        ("zero_drift", "raised"),
        ("zero_drift", "cleared"),
    ]
    assert alerts[0].value == 40
    assert alerts[0].threshold == 30
    assert alerts[1].value is not None
    assert abs(alerts[1].value) <= 15
