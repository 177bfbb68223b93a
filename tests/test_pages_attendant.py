"""The attendant (petugas) page on the gateway, in a real browser, end to end on real processes.

simulated indicator (real pty) -> `wastebank gateway` with its local endpoint -> Mosquitto ->
`wastebank ingest` -> the ledger, and the central API (uvicorn on a loopback port) the gateway
forwards logins to and fetches the member list and prices from. The attendant uses Debian's
Chromium through Playwright at tablet size (wastebank/browser.py); the member then sees the
deposit on their own page of the central API.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from firmware_sim.kiosk import KioskSimulator
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import (
    PrivateMosquitto,
    Processes,
    free_port,
    influx_database,
    settings_env,
    wait_until,
    write_site,
)
from wastebank import services
from wastebank.browser import TABLET, chromium
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx
from wastebank.passbook import rupiah

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

pytestmark = pytest.mark.integration

BANK, MEMBER, CARD = "bs-batu-merah", "AMB-0001", "04A1B2C3D4"  # Siti Latuconsina, demo city
TIMEOUT_MS = 30_000


class ScaleThread:
    """The simulated indicator on a pty, run on an event loop in a thread of its own (the
    browser is driven with Playwright's sync API, which wants no event loop in the test's)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.sim: KioskSimulator | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, name="scale-sim", daemon=True)

    def __enter__(self) -> ScaleThread:
        self.thread.start()
        assert self.ready.wait(10), "the simulated scale did not start"
        return self

    def _run(self) -> None:
        self.loop.run_until_complete(self._main())
        self.loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with KioskSimulator(self.link, seed=5, speed=4) as sim:
            self.sim = sim
            self.ready.set()
            await self._stop.wait()

    def place_load(self, grams: int) -> None:
        assert self.sim is not None
        self.loop.call_soon_threadsafe(self.sim.place_load, grams)

    def tap_card(self, uid: str) -> None:
        assert self.sim is not None
        self.loop.call_soon_threadsafe(self.sim.send_frame, "CARD", uid)

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        expect.set_options(timeout=TIMEOUT_MS)  # a deposit crosses processes and the broker
        try:
            yield b
        finally:
            expect.set_options(timeout=5_000)  # Playwright's default, for other modules


@pytest.fixture
def influx(running_services: services.ServicesSettings, test_id: str) -> Iterator[InfluxSettings]:
    """The test's InfluxDB database (conftest's ``influx_settings`` is an async fixture: it
    cannot run beside Playwright's sync API); dropped afterwards, on a thread's event loop."""
    settings = influx_database(running_services, f"test_{test_id}")
    yield settings

    async def drop() -> None:
        client = Influx(settings)
        try:
            await client.drop_database()
        finally:
            await client.aclose()

    dropper = threading.Thread(target=asyncio.run, args=(drop(),))
    dropper.start()
    dropper.join(30)


def first_id(tmp_path: Path) -> str:
    """The gateway's first event id: its install is drawn with its outbox."""
    with closing(sqlite3.connect(tmp_path / "outbox.db")) as db:
        (install,) = db.execute("SELECT value FROM identity WHERE key='install'").fetchone()
    return f"gw-petugas.{install}.1"


def start_gateway(
    processes: Processes,
    tmp_path: Path,
    mqtt: MqttSettings,
    api_url: str,
    link: Path,
) -> str:
    """`wastebank gateway` with one attendant scale and the page; its local endpoint's URL."""
    port = free_port()
    site = write_site(
        tmp_path / "site.toml",
        gateway_id="gw-petugas",
        link=link,
        outbox=tmp_path / "outbox.db",
        flow="attendant",
        http_port=port,
        api_url=api_url,
        health_interval_s=1,
        attendant={
            "timezone": "Asia/Jayapura",
            "argon2_time_cost": 1,
            "argon2_memory_kib": 8,
            "sync_interval_s": 2,
        },
        credentials=mqtt,
    )
    processes.start("gateway", ["gateway", "--config", str(site)], settings_env(mqtt))
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=30)
    return base


def start_ingester(processes: Processes, env: dict[str, str], name: str = "ingest") -> None:
    processes.start(name, ["ingest"], {**env, "WASTEBANK_BATCH_MAX_AGE_S": "0.05"})
    wait_until(lambda: "subscribed" in processes.log(name), timeout=30)


def central(ledger_url: str, mqtt: MqttSettings, influx: InfluxSettings) -> ApiEnv:
    return ApiEnv(ledger_url, api_settings(mqtt=mqtt, influx=influx, ledger_url=ledger_url))


def balance(api: ApiEnv) -> int:
    resp = api.client.get(f"/api/members/{MEMBER}/balance", headers=api.bearer("admin"))
    assert resp.status_code == 200, resp.text
    value: int = resp.json()["balance_idr"]
    return value


def attendant_page(browser: Browser, gateway: str, api: ApiEnv) -> Page:
    """A tablet signed in on the gateway page as the bank's attendant (forwarded online)."""
    context = browser.new_context(viewport=TABLET, base_url=gateway)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto("/petugas")
    username, password = api.creds["attendant_1"]
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#login")
    expect(page.locator("header")).to_contain_text("Nurlela Tuanaya")
    return page


def record(page: Page, scale: ScaleThread, grams: int) -> None:
    page.click("#categories button[data-category=pet]")
    expect(page.locator("#record")).to_be_enabled()
    page.click("#record")
    expect(page.locator("#scale-state")).to_have_attribute("data-armed", "yes")
    scale.place_load(grams)


def test_attendant_records_a_deposit_the_member_then_sees(
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    env = {
        **settings_env(mqtt_settings, influx, ledger_url),
        "WASTEBANK_CLIENT_ID": f"ingest-{test_id}",
    }
    start_ingester(processes, env)
    link = tmp_path / "indicator.tty"
    with (
        central(ledger_url, mqtt_settings, influx) as api,
        ScaleThread(link) as scale,
    ):
        before = balance(api)
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)

        # Live weight from the gateway (Server-Sent Events), in Indonesian format.
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        expect(page.locator("#banner")).to_be_hidden()
        # The price list and member directory came from the central API at login.
        expect(page.locator("#categories")).to_contain_text("Rp4.000/kg")

        # The member by name, then by a card tapped on the reader next to the scale.
        page.fill("#member-q", "pattiasina")
        page.click("#members button[data-member=AMB-0002]")
        expect(page.locator("#selected-member")).to_contain_text("Yohanes Pattiasina (AMB-0002)")
        scale.tap_card(CARD)
        expect(page.locator("#card-text")).to_contain_text(f"Siti Latuconsina ({MEMBER})")
        page.click("#card-use")
        expect(page.locator("#selected-member")).to_contain_text(f"Siti Latuconsina ({MEMBER})")
        expect(page.locator("#card-tap")).to_be_hidden()

        # Record: the next settled load is the deposit; the page shows it with its estimate.
        record(page, scale, 1250)
        receipt = page.locator("#receipt")
        expect(receipt).to_be_visible()
        expect(page.locator("#r-weight")).to_have_text("1,25 kg")
        expect(page.locator("#r-amount")).to_have_text("Rp5.000")
        expect(page.locator("#r-event")).to_have_text(first_id(tmp_path))
        expect(page.locator("#r-time")).to_contain_text(re.compile(r"\d{4} \d\d\.\d\d WIT$"))
        expect(page.locator("#r-status")).to_have_text("terkirim / sent")
        page.emulate_media(media="print")  # Cetak / Print: the receipt alone
        expect(page.locator("#scale-section")).to_be_hidden()
        expect(page.locator("#journal")).to_be_hidden()
        expect(page.locator("#r-event")).to_be_visible()
        page.emulate_media(media="screen")
        wa = page.locator("#whatsapp").get_attribute("href") or ""
        assert wa.startswith("https://wa.me/?text=")
        assert first_id(tmp_path) in wa
        row = page.locator(f"#journal tr[data-event='{first_id(tmp_path)}']")
        expect(row).to_contain_text("1,25 kg")
        expect(row).to_contain_text("terkirim / sent")
        scale.place_load(0)
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= TABLET["width"], f"{width} px wide on the tablet"
        page.screenshot(path=tmp_path / "petugas.png", full_page=True)

        # In the ledger, and on the member's own page of the central API.
        wait_until(lambda: balance(api) == before + 5000, timeout=30)
        member = browser.new_context(viewport=TABLET, base_url=str(api.client.base_url))  # type: ignore[arg-type]
        citizen = member.new_page()
        citizen.goto("/masuk")
        username, pin = api.creds["citizen_a"]
        citizen.fill("#username", username)
        citizen.fill("#password", pin)
        with citizen.expect_navigation():
            citizen.click("button[type=submit]")
        expect(citizen).to_have_url(re.compile(f"/nasabah/{MEMBER}$"))
        expect(citizen.locator("body")).to_contain_text(rupiah(before + 5000))
        member.close()

        # A void from the page reaches the ledger with the attendant's token.
        row.locator("button.void").click()
        page.fill("#void-reason", "salah jenis sampah")
        page.click("#void-confirm")
        expect(row).to_contain_text("dibatalkan / voided")
        assert balance(api) == before


def test_a_deposit_while_the_broker_is_down_is_pending_then_lands(
    browser: Browser,
    private_mosquitto: PrivateMosquitto,
    processes: Processes,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    test_id: str,
) -> None:
    broker = private_mosquitto
    mqtt = broker.mqtt(f"test-{test_id}/")
    env = {**settings_env(mqtt, influx, ledger_url), "WASTEBANK_CLIENT_ID": f"i-{test_id}"}
    start_ingester(processes, env)
    link = tmp_path / "indicator.tty"
    with central(ledger_url, mqtt, influx) as api, ScaleThread(link) as scale:
        before = balance(api)
        gateway = start_gateway(processes, tmp_path, mqtt, str(api.client.base_url), link)
        wait_until(lambda: "connected to the broker" in processes.log("gateway"), timeout=30)
        page = attendant_page(browser, gateway, api)
        expect(page.locator("#weight")).to_have_text("0,00 kg")

        broker.stop()
        banner = page.locator("#banner")
        expect(banner).to_contain_text("setoran disimpan di gateway")
        page.fill("#member-q", MEMBER)
        page.click(f"#members button[data-member={MEMBER}]")
        record(page, scale, 2000)
        expect(page.locator("#r-event")).to_have_text(first_id(tmp_path))
        expect(page.locator("#r-amount")).to_have_text("Rp8.000")
        expect(page.locator("#r-status")).to_have_text("menunggu / pending")
        row = page.locator(f"#journal tr[data-event='{first_id(tmp_path)}']")
        expect(row).to_contain_text("menunggu / pending")
        expect(banner).to_contain_text("menunggu dikirim")
        # A void asked for now waits in the gateway too (the ledger has no such deposit yet).
        row.locator("button.void").click()
        page.fill("#void-reason", "timbangan belum nol")
        page.click("#void-confirm")
        expect(row).to_contain_text("batal menunggu / void pending")

        broker.start()
        expect(page.locator("#r-status")).to_have_text("terkirim / sent", timeout=60_000)
        expect(banner).to_be_hidden(timeout=60_000)
        expect(row).to_contain_text("dibatalkan / voided", timeout=60_000)
        assert balance(api) == before

    deposit = _ledger_deposit(ledger_url, first_id(tmp_path))
    assert deposit == {"net_g": 2000, "voided": True, "member_no": MEMBER}


def _ledger_deposit(url: str, event_id: str) -> dict[str, Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from wastebank import ledger

    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            d = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == event_id))
            assert d is not None
            voided = s.scalar(
                select(ledger.DepositVoid.deposit_id).where(ledger.DepositVoid.deposit_id == d.id)
            )
            return {"net_g": d.net_g, "voided": voided is not None, "member_no": d.member.member_no}
    finally:
        engine.dispose()


def test_an_attendant_who_logged_in_online_can_log_in_and_record_offline(
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    """The bank's internet is down (the central API unreachable): the login cache, the member
    directory and the price list on the gateway keep the page working."""
    link = tmp_path / "indicator.tty"
    with ScaleThread(link) as scale:
        with central(ledger_url, mqtt_settings, influx) as api:
            creds = api.creds["attendant_1"]
            gateway = start_gateway(
                processes, tmp_path, mqtt_settings, str(api.client.base_url), link
            )
            page = attendant_page(browser, gateway, api)  # online: cached
            with page.expect_navigation():
                page.click("header button")
        # the central API is gone now
        page.fill("#username", creds[0])
        page.fill("#password", "salah-sekali")
        with page.expect_navigation():
            page.click("#login")
        expect(page.locator("#login-error")).to_contain_text("salah")
        page.fill("#username", creds[0])
        page.fill("#password", creds[1])
        with page.expect_navigation():
            page.click("#login")
        expect(page.locator("header")).to_contain_text("masuk offline / offline login")
        expect(page.locator("#banner")).to_contain_text("API pusat tidak terjangkau")
        page.fill("#member-q", "Siti")
        page.click(f"#members button[data-member={MEMBER}]")
        record(page, scale, 500)
        expect(page.locator("#r-amount")).to_have_text("Rp2.000")
        expect(page.locator("#r-member")).to_have_text(f"Siti Latuconsina ({MEMBER})")
        expect(page.locator("#r-status")).to_have_text("terkirim / sent")
