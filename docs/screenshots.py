"""`make screenshots`: PNGs of every page into docs/screenshots/, from the app running on demo
data (a temporary SQLite ledger seeded with the demo city and months of sample deposits; TPS
fill readings in a temporary database on the project's InfluxDB, dropped at the end).

Citizen pages at 360 px (a cheap Android phone), DLH and admin pages at desktop size, the login
page at both, and the attendant's page on the bank's gateway at tablet size (a real `wastebank
gateway` process with a simulated indicator on a pty, publishing to the project's Mosquitto under
a topic prefix of its own). Needs `make install browser services` (Chromium from Debian,
InfluxDB and Mosquitto running).

    .venv/bin/python docs/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import tomli_w
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from api.app import create_app  # noqa: E402
from api.settings import ApiSettings, PagesSettings  # noqa: E402
from firmware_sim.kiosk import KioskSimulator  # noqa: E402
from wastebank import access, ledger, services  # noqa: E402
from wastebank.browser import DESKTOP, PHONE, TABLET, chromium  # noqa: E402
from wastebank.config import InfluxSettings, MqttSettings, SecretStr, load_settings  # noqa: E402
from wastebank.influx import Influx  # noqa: E402
from wastebank.sample import deposit_history, fill_history  # noqa: E402
from wastebank.seed import load_city, seed  # noqa: E402

if TYPE_CHECKING:  # playwright is a dev dependency
    from playwright.sync_api import Browser, Page

log = logging.getLogger("screenshots")

OUT = REPO / "docs" / "screenshots"
MEMBER = "AMB-0001"  # Siti Latuconsina, bs-batu-merah


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _users(ledger_url: str, auth: access.AuthSettings) -> dict[str, tuple[str, str]]:
    """A login per role for this run: (username, secret) by role name."""
    hasher = access.password_hasher(auth)
    actor = access.Actor("screenshots", "cli")
    made = {
        "admin": (access.Role.ADMIN, {"username": "admin"}),
        "dlh": (access.Role.DLH, {"username": "dlh-ambon", "city_code": "ambon"}),
        "citizen": (access.Role.CITIZEN, {"member_no": MEMBER}),
        "attendant": (access.Role.ATTENDANT, {"username": "petugas-bm-01"}),  # Nurlela Tuanaya
    }
    out: dict[str, tuple[str, str]] = {}
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            for name, (role, args) in made.items():
                secret = access.generate_pin() if role == access.Role.CITIZEN else None
                secret = secret or secrets.token_urlsafe(16)
                user = access.add_user(
                    session, role=role, secret=secret, hasher=hasher, actor=actor, **args
                )
                out[name] = (user.username, secret)
            session.commit()
    finally:
        engine.dispose()
    return out


@contextmanager
def serve(settings: ApiSettings) -> Iterator[str]:
    """The app on a free loopback port, in a thread; its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.05)  # poll until uvicorn says it is serving
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def _drop(settings: InfluxSettings) -> None:
    influx = Influx(settings)
    try:
        await influx.drop_database()
    finally:
        await influx.aclose()


def _login(page: Page, username: str, secret: str) -> None:
    page.goto("/masuk")
    page.fill("#username", username)
    page.fill("#password", secret)
    with page.expect_navigation():
        page.click("button[type=submit]")


def _shot(page: Page, out: Path, name: str) -> Path:
    page.wait_for_load_state("networkidle")
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    log.info("%s", path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return path


def citizen_pages(
    browser: Browser, base: str, creds: dict[str, tuple[str, str]], out: Path
) -> list[Path]:
    context = browser.new_context(viewport=PHONE, base_url=base, locale="id-ID")  # type: ignore[arg-type]
    page = context.new_page()
    try:
        shots = [_shot_goto(page, out, "masuk-360", "/masuk")]
        _login(page, *creds["citizen"])
        page.fill("#amount_idr", "25000")
        with page.expect_navigation():
            page.click("#withdraw-form button[type=submit]")
        shots.append(_shot(page, out, "nasabah-360"))
        page.goto(f"/nasabah/{MEMBER}?lang=en")
        shots.append(_shot(page, out, "nasabah-360-en"))
        page.goto(f"/nasabah/{MEMBER}?lang=id")
        return shots
    finally:
        context.close()


def _shot_goto(page: Page, out: Path, name: str, path: str) -> Path:
    page.goto(path)
    return _shot(page, out, name)


def staff_pages(
    browser: Browser, base: str, creds: dict[str, tuple[str, str]], out: Path
) -> list[Path]:
    context = browser.new_context(viewport=DESKTOP, base_url=base, locale="id-ID")  # type: ignore[arg-type]
    page = context.new_page()
    try:
        shots = [_shot_goto(page, out, "masuk-desktop", "/masuk")]
        _login(page, *creds["dlh"])
        shots.append(_shot(page, out, "dlh"))
        context.clear_cookies()  # signed out
        _login(page, *creds["admin"])
        shots.append(_shot(page, out, "admin-bank"))
        shots.append(_shot_goto(page, out, "admin-harga", "/admin/harga/bs-batu-merah"))
        with tempfile.TemporaryDirectory() as tmp:
            sheet = Path(tmp) / "nasabah-baru.csv"
            sheet.write_text(
                "no_nasabah;nama;kode_bank;kelurahan;telepon\n"
                "AMB-0301;Yohana Pattiasina;bs-nusaniwe;Benteng;081234567890\n"
                "AMB-0302;Abdul Rahman Ohorella;bs-batu-merah;Batu Merah;0812-4455-6677\n"
                "AMB-0001;Nomor Sudah Dipakai;bs-batu-merah;Rijali;\n"
            )
            page.goto("/admin/impor")
            page.set_input_files("#file", str(sheet))
            page.check("#dry_run")
            with page.expect_navigation():
                page.click("#import-form button[type=submit]")
            shots.append(_shot(page, out, "admin-impor"))
        shots.append(_shot_goto(page, out, "admin-perangkat", "/admin/perangkat"))
        return shots
    finally:
        context.close()


@contextmanager
def gateway(
    api_base: str, mqtt_port: int, tmp: Path
) -> Iterator[tuple[str, Callable[[int], None]]]:
    """The bank's gateway (`wastebank gateway`, a child process) with one attendant scale: a
    simulated indicator on a pty, played on an event loop in a thread of its own (Playwright's
    sync API wants none in ours). Yields the gateway page's base URL and a function that puts
    a load (grams) on the indicator."""
    link = tmp / "meja.tty"
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    sims: list[KioskSimulator] = []

    async def play() -> None:
        async with KioskSimulator(link, seed=7, speed=4) as sim:
            sims.append(sim)
            ready.set()
            await stop.wait()  # the indicator streams frames meanwhile

    thread = threading.Thread(target=loop.run_until_complete, args=(play(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the simulated indicator did not start")
    port = _free_port()
    site = tmp / "site.toml"
    site.write_text(
        tomli_w.dumps(
            {
                "gateway_id": "gw-01",
                "bank_code": "bs-batu-merah",
                "http_port": port,
                "api_url": api_base,
                "attendant": {"timezone": "Asia/Jayapura"},
                "outbox": {"path": str(tmp / "outbox.db")},
                "scales": [
                    {"id": "meja-01", "port": str(link), "flow": "attendant", "protocol": "gs_nt"}
                ],
            }
        )
    )
    env = {
        **os.environ,
        "WASTEBANK_MQTT__PORT": str(mqtt_port),
        "WASTEBANK_MQTT__TOPIC_PREFIX": f"screenshots-{uuid.uuid4().hex[:8]}/",
    }
    with (tmp / "gateway.log").open("ab") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wastebank.cli", "gateway", "--config", str(site)],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start: see {tmp / 'gateway.log'}")
            time.sleep(0.2)  # polling a starting process
        yield base, lambda grams: loop.call_soon_threadsafe(sims[0].place_load, grams)
    finally:
        proc.terminate()
        proc.wait(30)
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def attendant_pages(
    browser: Browser,
    api_base: str,
    mqtt_port: int,
    creds: dict[str, tuple[str, str]],
    out: Path,
    tmp: Path,
) -> list[Path]:
    """The attendant's page on the bank's gateway, at tablet size: a member found, a category
    picked, a deposit recorded from the simulated indicator, its receipt."""
    with gateway(api_base, mqtt_port, tmp) as (base, place_load):
        context = browser.new_context(viewport=TABLET, base_url=base, locale="id-ID")  # type: ignore[arg-type]
        page = context.new_page()
        try:
            page.goto("/petugas")
            shots = [_shot(page, out, "petugas-masuk")]
            username, password = creds["attendant"]
            page.fill("#username", username)
            page.fill("#password", password)
            with page.expect_navigation():
                page.click("#login")
            page.fill("#member-q", "siti")
            page.click(f"#members button[data-member={MEMBER}]")
            page.click("#categories button[data-category=pet]")
            page.click("#record")
            page.locator("#scale-state[data-armed=yes]").wait_for()
            place_load(2350)
            page.locator("#receipt").wait_for(state="visible", timeout=30_000)
            page.locator("#r-status", has_text="terkirim").wait_for(timeout=30_000)
            shots.append(_shot(page, out, "petugas"))
            return shots
        finally:
            context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    svc = load_settings(services.ServicesSettings)
    influx = InfluxSettings(
        url=f"http://127.0.0.1:{svc.influx_port}", database=f"screenshots_{uuid.uuid4().hex[:8]}"
    )
    auth = access.AuthSettings(
        secret_key=SecretStr(secrets.token_urlsafe(32)),
        argon2_time_cost=1,
        argon2_memory_kib=8,
        argon2_parallelism=1,
    )
    with tempfile.TemporaryDirectory(prefix="wastebank-screenshots-") as tmp:
        ledger_url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        engine = ledger.make_engine(ledger_url)
        try:
            summary = seed(engine, load_city())
        finally:
            engine.dispose()
        now = datetime.now(UTC)
        deposits, grams = deposit_history(ledger_url, summary, now=now)
        log.info("data contoh / demo data: %d setoran / deposits, %d kg", deposits, grams // 1000)
        asyncio.run(fill_history(influx, ledger_url=ledger_url, now=now))
        creds = _users(ledger_url, auth)
        settings = load_settings(
            ApiSettings,
            mqtt=MqttSettings(port=svc.mqtt_port),
            influx=influx,
            ledger_url=ledger_url,
            auth=auth,
            pages=PagesSettings(broker_run_dir=Path(tmp) / "broker-run"),
        )
        try:
            with serve(settings) as base, chromium() as browser:
                shots: list[Path] = []
                shots += citizen_pages(browser, base, creds, out)
                shots += staff_pages(browser, base, creds, out)
                shots += attendant_pages(browser, base, svc.mqtt_port, creds, out, Path(tmp))
        finally:
            asyncio.run(_drop(influx))
    log.info("%d gambar / screenshots in %s", len(shots), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
