"""The attendant's stack for page tests, on real processes: a simulated indicator on a pty,
`wastebank gateway` with its local endpoint, Mosquitto, `wastebank ingest`, the ledger, and the
central API (uvicorn on a loopback port) the gateway forwards logins to and syncs members and
prices from.

Used by every test of the gateway's attendant pages (tests/test_pages_attendant*.py). Import the
fixtures you use into the test module (``from tests.attendant_stack import browser, influx``) and
drive the page with Playwright's sync API in Debian's Chromium: :func:`attendant_page` signs an
attendant in at phone size (360 x 740) by default.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from firmware_sim.kiosk import KioskSimulator
from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import (
    Processes,
    free_port,
    influx_database,
    settings_env,
    wait_until,
    write_site,
)
from wastebank import services
from wastebank.browser import PHONE, chromium
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

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


def attendant_page(
    browser: Browser,
    gateway: str,
    api: ApiEnv,
    viewport: dict[str, int] = PHONE,
    account: str = "attendant_1",
) -> Page:
    """A phone (or ``viewport``) signed in on the gateway page as the bank's attendant
    (``account``, one of ``api.creds``; forwarded online)."""
    context = browser.new_context(viewport=viewport, base_url=gateway)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto("/petugas")
    username, password = api.creds[account]
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


def tap(page: Page, scale: ScaleThread, uid: str, shown: str) -> None:
    """Tap the card on the simulated reader; the page shows ``shown``. (Taps once seemed lost
    on a loaded machine: a stale gateway was reading the same reused pty; the gateway now locks
    its port, so a tap is read or the port is reported held.)"""
    scale.tap_card(uid)
    expect(page.locator("#card-text")).to_contain_text(shown)
