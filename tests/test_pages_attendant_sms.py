"""SMS receipts switched on the gateway's members page (/petugas/nasabah), in a real browser at
360 x 740 on real processes (tests/attendant_stack.py: the gateway, the central API on the test's
ledger): a walk-in registered with "Struk lewat SMS" gets them at once (the page asks for a phone
first, in our own words); a member's SMS is switched off and on; a member without a phone is
refused with the central API's message in Indonesian and the switch stays off."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Processes
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    ScaleThread,
    attendant_page,
    browser,
    central,
    influx,
    start_gateway,
)
from tests.auth_helpers import ApiEnv  # noqa: E402

pytestmark = pytest.mark.integration

__all__ = ["browser", "influx"]  # fixtures

NEW_MEMBER = "AMB-0004"  # the demo's bank 1 has AMB-0001..0003: the page proposes the next


def opted_in(api: ApiEnv, member_no: str) -> bool:
    resp = api.client.get(f"/api/members/{member_no}", headers=api.bearer("admin"))
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["sms_opt_in"])


def no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width} px wide at {PHONE['width']} px"


def test_sms_receipts_are_switched_on_the_members_page(
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    link = tmp_path / "indicator.tty"
    with central(ledger_url, mqtt_settings, influx) as api, ScaleThread(link):
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)  # 360 x 740
        page.goto("/petugas/nasabah")
        expect(page.locator("#reg-no")).to_have_value(NEW_MEMBER)

        # SMS ticked without a phone: our own message, nothing registered yet.
        page.fill("#reg-name", "Maria Latumahina")
        page.check("#reg-sms")
        page.click("#reg-submit")
        expect(page.locator("#reg-phone-error")).to_contain_text("wajib diisi")
        expect(page.locator("#m-selected")).to_have_attribute("data-member", "")

        page.fill("#reg-phone", "081234567890")
        page.click("#reg-submit")
        expect(page.locator("#m-selected")).to_have_attribute("data-member", NEW_MEMBER)
        expect(page.locator("#sms-opt-in")).to_be_checked()
        expect(page.locator("#sms-text")).to_contain_text("081234567890")
        expect(page.locator("#sms-box")).to_have_attribute("data-sms", "on")
        assert opted_in(api, NEW_MEMBER)
        expect(page.locator("#reg-sms")).not_to_be_checked()  # the form is new again
        no_overflow(page)

        # Off, then on again.
        page.uncheck("#sms-opt-in")
        expect(page.locator("#sms-box")).to_have_attribute("data-sms", "off")
        expect(page.locator("#sms-text")).to_contain_text("Mati")
        assert not opted_in(api, NEW_MEMBER)
        page.check("#sms-opt-in")
        expect(page.locator("#sms-box")).to_have_attribute("data-sms", "on")
        assert opted_in(api, NEW_MEMBER)

        # A member without a phone (the demo's AMB-0003): refused, the switch stays off.
        page.fill("#m-q", "amb0003")
        expect(page.locator("#m-results button[data-member]")).to_have_count(1)
        page.press("#m-q", "Enter")
        expect(page.locator("#m-selected")).to_have_attribute("data-member", "AMB-0003")
        expect(page.locator("#sms-text")).to_contain_text("Belum ada nomor HP")
        expect(page.locator("#sms-opt-in")).to_be_enabled()
        page.check("#sms-opt-in")
        expect(page.locator("#sms-error")).to_contain_text("SMS perlu nomor HP yang valid")
        expect(page.locator("#sms-opt-in")).not_to_be_checked()
        assert not opted_in(api, "AMB-0003")
        no_overflow(page)
