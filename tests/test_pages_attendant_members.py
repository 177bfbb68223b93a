"""Members at the bank, in a real browser at 360 x 740, end to end on real processes (the stack of
tests/attendant_stack.py): an attendant registers a walk-in on the gateway's page, binds a card
tapped on the simulated scale's reader, issues a PIN and reads it from the printed slip, records
a deposit for them from the simulated scale (tap, record); the new member then logs in on the
central API's /masuk with that PIN and sees the deposit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import Processes, settings_env, wait_until
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.passbook import rupiah

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    ScaleThread,
    attendant_page,
    browser,
    central,
    influx,
    record,
    start_gateway,
    start_ingester,
    tap,
)

pytestmark = pytest.mark.integration

NEW_MEMBER = "AMB-0004"  # the demo's bank 1 has AMB-0001..0003: the page proposes the next
NEW_CARD = "0A1B2C3D4E"


def no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width} px wide at {PHONE['width']} px"


def test_a_walk_in_registered_with_a_card_and_a_pin_sees_their_deposit(
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
    with central(ledger_url, mqtt_settings, influx) as api, ScaleThread(link) as scale:
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)  # 360 x 740
        page.goto("/petugas/nasabah")

        # Register: the bank's next number is proposed; our own messages for a bad field.
        expect(page.locator("#reg-no")).to_have_value(NEW_MEMBER)
        page.fill("#reg-nik", "12345")
        page.click("#reg-submit")
        expect(page.locator("#reg-name-error")).to_contain_text("wajib diisi")
        expect(page.locator("#reg-nik-error")).to_contain_text("16 angka")
        page.fill("#reg-name", "Maria Latumahina")
        page.fill("#reg-nik", "")
        page.fill("#reg-phone", "081234567890")
        page.fill("#reg-rt", "3")
        page.fill("#reg-rw", "2")
        page.click("#reg-submit")
        selected = page.locator("#m-selected")
        expect(selected).to_contain_text(f"Maria Latumahina ({NEW_MEMBER})")
        expect(page.locator("#reg-no")).to_have_value("AMB-0005")  # the next one, proposed

        # A new card tapped on the scale's reader, bound to her.
        tap(page, scale, NEW_CARD, f"Kartu baru / New card {NEW_CARD}")
        page.click("#card-bind")
        expect(selected).to_contain_text(NEW_CARD)
        expect(page.locator("#card-box")).to_have_attribute("data-state", "taken")

        # Her PIN, on the slip.
        page.click("#pin-issue")
        expect(page.locator("#pin-slip")).to_be_visible()
        expect(page.locator("#pin-value")).to_have_text(re.compile(r"^[0-9]{6}$"))
        no_overflow(page)
        page.click("#slip-print")
        slip = page.locator("[data-kind='pin']")
        expect(slip).to_contain_text("Maria Latumahina")
        text = slip.inner_text()
        for label in ("No. nasabah", "Nama pengguna"):
            assert re.search(rf"{label}\s+{NEW_MEMBER}", text), text
        assert f"{api.client.base_url}/masuk" in text
        found = re.search(r"\bPIN\s+([0-9]{6})\b", text)
        assert found is not None, text
        pin = found[1]
        no_overflow(page)

        # A deposit for her: her card tapped at the weighing page, then the scale's next load.
        page.goto("/petugas")
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        tap(page, scale, NEW_CARD, f"Maria Latumahina ({NEW_MEMBER})")
        page.click("#card-use")
        record(page, scale, 1500)
        expect(page.locator("#r-weight")).to_have_text("1,50 kg")

        def balance() -> int:
            resp = api.client.get(f"/api/members/{NEW_MEMBER}/balance", headers=api.bearer("admin"))
            assert resp.status_code == 200, resp.text
            value: int = resp.json()["balance_idr"]
            return value

        wait_until(lambda: balance() > 0, timeout=30)
        credited = balance()

        # She logs in on the central API's page with the printed PIN and sees it.
        member = browser.new_context(viewport=PHONE, base_url=str(api.client.base_url))  # type: ignore[arg-type]
        citizen = member.new_page()
        citizen.goto("/masuk")
        citizen.fill("#username", NEW_MEMBER)
        citizen.fill("#password", pin)
        with citizen.expect_navigation():
            citizen.click("button[type=submit]")
        expect(citizen).to_have_url(re.compile(f"/nasabah/{NEW_MEMBER}$"))
        expect(citizen.locator("body")).to_contain_text(rupiah(credited))
        expect(citizen.locator("body")).to_contain_text("Maria Latumahina")
        member.close()
