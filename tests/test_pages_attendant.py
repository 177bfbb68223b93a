"""The attendant (petugas) page on the gateway, in a real browser, end to end on real processes.

simulated indicator (real pty) -> `wastebank gateway` with its local endpoint -> Mosquitto ->
`wastebank ingest` -> the ledger, and the central API (uvicorn on a loopback port) the gateway
forwards logins to and fetches the member list and prices from. The attendant uses Debian's
Chromium through Playwright on a phone (360 x 740, wastebank/browser.py); the member then sees
the deposit on their own page of the central API. The page never scrolls sideways.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    PrivateMosquitto,
    Processes,
    settings_env,
    wait_until,
)
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.passbook import rupiah

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    CARD,
    MEMBER,
    ScaleThread,
    attendant_page,
    balance,
    browser,
    central,
    first_id,
    influx,
    record,
    start_gateway,
    start_ingester,
    tap,
)

pytestmark = pytest.mark.integration


def fits(page: Page) -> None:
    """No sideways scroll on the phone."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width} px wide on a {PHONE['width']} px phone"


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
        # The header is compact and names the bank (from the central API), not its code.
        header = page.locator("header").bounding_box()
        assert header is not None
        assert header["height"] <= 64, header
        expect(page.locator("#bank-name")).to_have_text("Bank Sampah Batu Merah Bersih")

        # Live weight from the gateway (Server-Sent Events), in Indonesian format.
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        expect(page.locator("#banner")).to_be_hidden()
        # The price list and member directory came from the central API at login.
        expect(page.locator("#categories")).to_contain_text("Rp4.000/kg")

        # The member by name, then by a card tapped on the reader next to the scale.
        page.fill("#member-q", "pattiasina")
        page.click("#members button[data-member=AMB-0002]")
        expect(page.locator("#selected-member")).to_contain_text("Yohanes Pattiasina (AMB-0002)")
        tap(page, scale, CARD, f"Siti Latuconsina ({MEMBER})")
        page.click("#card-use")
        expect(page.locator("#selected-member")).to_contain_text(f"Siti Latuconsina ({MEMBER})")
        expect(page.locator("#card-tap")).to_be_hidden()

        # Record: the next settled load is the deposit; the page shows it with its estimate.
        record(page, scale, 1250)
        expect(page.locator("#scale-state")).to_contain_text(
            "Botol PET bersih untuk Siti Latuconsina"
        )
        receipt = page.locator("#receipt")
        expect(receipt).to_be_visible()
        expect(page.locator("#r-weight")).to_have_text("1,25 kg")
        expect(page.locator("#r-amount")).to_have_text("Rp5.000")
        expect(page.locator("#r-event")).to_have_text(first_id(tmp_path))
        expect(page.locator("#r-time")).to_contain_text(re.compile(r"\d{4} \d\d\.\d\d WIT$"))
        expect(page.locator("#r-status")).to_have_text("terkirim / sent")
        expect(page.locator("#r-category")).to_have_text("Botol PET bersih")
        # The next load starts from nothing: member and category cleared, Record disabled.
        expect(page.locator("#selected-member")).to_have_text("")
        expect(page.locator("#categories button.chosen")).to_have_count(0)
        expect(page.locator("#record")).to_be_disabled()
        page.emulate_media(media="print")  # Cetak / Print: the receipt alone
        expect(page.locator("#scale-section")).to_be_hidden()
        expect(page.locator("#journal")).to_be_hidden()
        expect(page.locator("#r-event")).to_be_visible()
        page.emulate_media(media="screen")
        wa = page.locator("#whatsapp").get_attribute("href") or ""
        assert wa.startswith("https://wa.me/?text=")
        assert first_id(tmp_path) in wa
        row = page.locator(f"#journal [data-event='{first_id(tmp_path)}']")
        expect(row).to_contain_text("1,25 kg")
        expect(row).to_contain_text("Rp5.000")
        expect(row).to_contain_text("terkirim / sent")
        row.locator("button.void").scroll_into_view_if_needed()
        expect(row.locator("button.void")).to_be_in_viewport(ratio=1)  # not cut at the side
        scale.place_load(0)
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        fits(page)
        page.screenshot(path=tmp_path / "petugas.png", full_page=True)

        # In the ledger, and on the member's own page of the central API.
        wait_until(lambda: balance(api) == before + 5000, timeout=30)
        member = browser.new_context(viewport=PHONE, base_url=str(api.client.base_url))  # type: ignore[arg-type]
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

        # A void from the page reaches the ledger with the attendant's token. The dialog says
        # what is voided, its button is the red one, and a blank reason is refused in words.
        row.locator("button.void").click()
        dialog = page.locator("#wb-confirm")
        for text in ("Siti Latuconsina", "Botol PET bersih", "1,25 kg", "Rp5.000"):
            expect(dialog.locator("#wb-confirm-rows")).to_contain_text(text)
        expect(page.locator("#wb-confirm-ok")).to_have_class(re.compile(r"\bdanger\b"))
        page.fill("#wb-confirm-reason", "   ")
        page.click("#wb-confirm-ok")
        expect(page.locator("#wb-confirm-error")).to_have_text(
            "Alasan wajib diisi / A reason is required"
        )
        expect(dialog).to_be_visible()
        fits(page)
        page.fill("#wb-confirm-reason", "salah jenis sampah")
        page.click("#wb-confirm-ok")
        expect(dialog).to_have_count(0)
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
        # A number typed loosely, and Enter takes the only member found.
        page.fill("#member-q", "amb 0001")
        page.press("#member-q", "Enter")
        expect(page.locator("#selected-member")).to_contain_text(f"Siti Latuconsina ({MEMBER})")
        record(page, scale, 2000)
        expect(page.locator("#r-event")).to_have_text(first_id(tmp_path))
        expect(page.locator("#r-amount")).to_have_text("Rp8.000")
        expect(page.locator("#r-status")).to_have_text("menunggu / pending")
        row = page.locator(f"#journal [data-event='{first_id(tmp_path)}']")
        expect(row).to_contain_text("menunggu / pending")
        expect(banner).to_contain_text("menunggu dikirim")
        fits(page)
        # A void asked for now waits in the gateway too (the ledger has no such deposit yet).
        row.locator("button.void").click()
        page.fill("#wb-confirm-reason", "timbangan belum nol")
        page.click("#wb-confirm-ok")
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
