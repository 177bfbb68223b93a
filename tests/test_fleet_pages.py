"""The fleet page in a real browser, fed by the real processes: simulated kiosk (pty) ->
`wastebank gateway` -> Mosquitto -> `wastebank ingest` -> the ledger's device_report -> the API
(uvicorn) -> Chromium at 360 x 740 and at desktop size.

A gateway that was running and is stopped (SIGTERM: it says "offline", retained) is listed as
offline, first; a gateway whose scale is overloaded (its health report published, retained,
through the broker with that gateway's own credentials) comes before every gateway that is
online; the same order in GET /api/fleet and `wastebank fleet --json`.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt
import pytest
from typer.testing import CliRunner

from firmware_sim.kiosk import KioskSimulator
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import (
    Processes,
    gateway_credentials,
    influx_database,
    settings_env,
    wait_until,
    write_site,
)
from tests.test_pages import _drop as drop_database
from tests.test_pages import signed_in
from wastebank import ledger, services
from wastebank.browser import DESKTOP, PHONE, chromium
from wastebank.cli import app as cli
from wastebank.config import MqttSettings
from wastebank.fleet import FleetSettings
from wastebank.messages import GatewayHealth, GatewayStatus, Topics
from wastebank.mqtt import client_id
from wastebank.seed import load_city, seed
from wastebank.structs import convert, encode_json

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = pytest.mark.integration

STOPPED, OVERLOADED, HEALTHY = "gw-fleet-stop", "gw-fleet-over", "gw-fleet-ok"
T = TypeVar("T")


def _in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a thread of its own: Playwright's sync API owns this thread's event loop,
    and ``work`` may run one (asyncio.run)."""
    out: list[T] = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join(timeout=60)
    assert out, "did not finish"
    return out[0]


def _run(coro: Coroutine[Any, Any, None]) -> None:
    _in_thread(lambda: asyncio.run(coro))


class Kiosk:
    """A simulated kiosk scale on a pty, streaming from a thread of its own until stopped."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self.loop, self.done = asyncio.get_running_loop(), asyncio.Event()
        async with KioskSimulator(self.link, seed=7, rate_hz=10):
            self.ready.set()
            await self.done.wait()

    def __enter__(self) -> Kiosk:
        self.thread.start()
        assert self.ready.wait(timeout=30), "the kiosk simulator did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.loop is not None
        assert self.done is not None
        self.loop.call_soon_threadsafe(self.done.set)
        self.thread.join(timeout=30)


def _health(gateway: str, bank: str, state: str, alerts: list[dict[str, Any]]) -> GatewayHealth:
    now = datetime.now(UTC)
    return convert(
        {
            "gateway_id": gateway,
            "bank_code": bank,
            "boot": "f1eet",
            "at": now,
            "uptime_s": 60,
            "outbox_depth": 0,
            "outbox_dropped": 0,
            "mqtt_reconnects": 0,
            "deposits_stored": 0,
            "version": "0.9.0",
            "clock": {"synchronized": True, "source": "timesyncd", "offset_ms": 4},
            "scales": [
                {
                    "scale_id": "scale-01",
                    "protocol": "a12",
                    "connected": True,
                    "frames_parsed": 10,
                    "frames_rejected": 0,
                    "reconnects": 0,
                    "state": state,
                    "state_since": now,
                }
            ],
            "alerts_active": alerts,
        },
        GatewayHealth,
    )


async def _publish_as_gateway(
    mqtt: MqttSettings, gateway: str, bank: str, health: GatewayHealth
) -> None:
    """The gateway's retained status and health, published with its own credentials."""
    assert mqtt.credentials_dir is not None
    password = (mqtt.credentials_dir / gateway).read_text().strip()
    topics = Topics(mqtt.topic_prefix)
    status = GatewayStatus(state="online", device_id=gateway, at=health.at, boot=health.boot)
    async with aiomqtt.Client(
        mqtt.host,
        mqtt.port,
        username=gateway,
        password=password,
        identifier=client_id(gateway, f"{gateway}.test"),
    ) as client:
        await client.publish(
            topics.gateway_status(bank, gateway), encode_json(status).decode(), qos=1, retain=True
        )
        await client.publish(
            topics.gateway_health(bank, gateway), encode_json(health).decode(), qos=1, retain=True
        )


@dataclass
class Stack:
    api: ApiEnv
    env: dict[str, str]  # a child process's WASTEBANK_* for this test's broker, InfluxDB, ledger


@pytest.fixture
def stack(
    running_services: services.ServicesSettings,
    mqtt_settings: MqttSettings,
    processes: Processes,
    tmp_path: Path,
    test_id: str,
) -> Iterator[Stack]:
    """A seeded SQLite ledger, the test's InfluxDB database, a real ingester, and the API."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    engine = ledger.make_engine(url)
    try:
        seed(engine, load_city())
    finally:
        engine.dispose()
    influx = influx_database(running_services, f"test_{test_id}")
    env = settings_env(mqtt_settings, influx, url)
    processes.start(
        "ingest",
        ["ingest"],
        {**env, "WASTEBANK_CLIENT_ID": f"ingest-{test_id}", "WASTEBANK_BATCH_MAX_AGE_S": "0.1"},
    )
    wait_until(lambda: "subscribed" in processes.log("ingest"), timeout=30)
    settings = api_settings(
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        ledger_url=url,
        # published once in this test: they must not fall silent while it runs
        fleet=FleetSettings(offline_after_s=600),
    )
    try:
        with ApiEnv(url, settings) as api:
            yield Stack(api, env)
    finally:
        _run(drop_database(influx))


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def _devices(api: ApiEnv, role: str = "admin") -> list[dict[str, Any]]:
    resp = api.client.get("/api/fleet", headers=api.bearer(role))
    assert resp.status_code == 200, resp.text
    devices: list[dict[str, Any]] = resp.json()["devices"]
    return devices


def _conditions(api: ApiEnv) -> dict[str, str]:
    return {d["device_id"]: d["condition"] for d in _devices(api)}


def _order(page: Page) -> list[str]:
    """The devices' ids in the page's order."""
    return [
        str(x)
        for x in page.locator("#fleet-list > li").evaluate_all(
            "els => els.map(e => e.dataset.device)"
        )
    ]


def _page(browser: Browser, api: ApiEnv, role: str, viewport: dict[str, int]) -> Page:
    """Signed in as ``role``, on the fleet page through the menu's link."""
    _context, page = signed_in(browser, api, role, viewport)
    page.get_by_role("link", name="Armada perangkat").click()
    expect(page.locator("h1")).to_have_text("Armada perangkat")
    return page


def test_a_stopped_gateway_is_offline_and_an_overloaded_scale_comes_first(
    stack: Stack,
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    tmp_path: Path,
) -> None:
    api = stack.api
    synced = tmp_path / "timesync" / "synchronized"
    synced.parent.mkdir()
    synced.touch()
    env = settings_env(mqtt_settings)
    link = tmp_path / "kiosk.tty"
    site = write_site(
        tmp_path / "site.toml",
        gateway_id=STOPPED,
        link=link,
        outbox=tmp_path / "outbox.db",
        health_interval_s=1,
        clock={"probe": "timesyncd", "sync_file": str(synced)},
        credentials=mqtt_settings,
    )
    for gateway, bank in ((OVERLOADED, "bs-rijali"), (HEALTHY, "bs-nusaniwe")):
        gateway_credentials(mqtt_settings, gateway, bank)
    overload = {"code": "overload", "subject": "scale-01", "since": datetime.now(UTC)}
    _run(
        _publish_as_gateway(
            mqtt_settings,
            OVERLOADED,
            "bs-rijali",
            _health(OVERLOADED, "bs-rijali", "overload", [overload]),
        )
    )
    _run(
        _publish_as_gateway(
            mqtt_settings, HEALTHY, "bs-nusaniwe", _health(HEALTHY, "bs-nusaniwe", "ok", [])
        )
    )
    with Kiosk(link):
        processes.start("gateway", ["gateway", "--config", str(site)], env)
        wait_until(lambda: "timbangan terhubung" in processes.log("gateway"), timeout=30)
        wait_until(
            lambda: (
                _conditions(api).get(STOPPED, "offline") != "offline" and len(_conditions(api)) == 3
            ),
            timeout=30,
        )
        # all three online: the overloaded one first
        page = _page(browser, api, "admin", DESKTOP)
        assert _order(page) == [OVERLOADED, STOPPED, HEALTHY]
        over = page.locator(f"#fleet-list > li[data-device='{OVERLOADED}']")
        expect(over.locator(".condition")).to_have_text("⚠ GANGGUAN")
        expect(over.locator(".problems")).to_contain_text("kelebihan beban: scale-01")
        expect(over.locator(".clock")).to_contain_text("tersinkron (timesyncd), selisih 4 ms")
        page.context.close()
        processes.kill("gateway", signal.SIGTERM)  # a clean stop: it says "offline"
    wait_until(lambda: _conditions(api).get(STOPPED) == "offline", timeout=30)

    for viewport in (PHONE, DESKTOP):
        page = _page(browser, api, "dlh", viewport)
        try:
            assert _order(page) == [STOPPED, OVERLOADED, HEALTHY]
            stopped = page.locator(f"#fleet-list > li[data-device='{STOPPED}']")
            expect(stopped.locator(".condition")).to_have_text("⛔ LURING")  # words, not colour
            expect(stopped.locator(".why-offline")).to_have_text("status: luring")
            expect(stopped).to_contain_text("Bank Sampah Batu Merah")
            expect(page.locator("#count-offline")).to_have_text("1")
            expect(page.locator("#count-fault")).to_have_text("1")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{width} px wide at {viewport['width']} px"
            # the filter, by its label: only those that are not ok
            page.get_by_label("Tampilkan").select_option("masalah")
            with page.expect_navigation():
                page.get_by_role("button", name="Terapkan").click()
            assert _order(page) == [STOPPED, OVERLOADED]
            page.click("#lang-switch")
            expect(page.locator(f"li[data-device='{STOPPED}'] .condition")).to_have_text(
                "⛔ OFFLINE"
            )
        finally:
            page.context.close()

    # the same order for a script
    devices = _devices(api, "dlh")
    assert [d["device_id"] for d in devices] == [STOPPED, OVERLOADED, HEALTHY]
    assert devices[0]["offline_reason"] == "status"
    assert devices[1]["problems"][0]["code"] == "overload"
    cli_env = {**stack.env, "WASTEBANK_FLEET__OFFLINE_AFTER_S": "600"}
    result = _in_thread(lambda: CliRunner().invoke(cli, ["fleet", "--json"], env=cli_env))
    assert result.exit_code == 1, result.output  # not every device is ok
    shown = json.loads(result.output)
    assert [d["device_id"] for d in shown["devices"]] == [STOPPED, OVERLOADED, HEALTHY]
    # a citizen is refused
    resp = api.client.get("/api/fleet", headers=api.bearer("citizen_a"))
    assert resp.status_code == 403
