"""Every attendant page fits a 360 px phone (issue 15): signed in at 360 x 740, each page the
frame's menu links to is opened and must not scroll sideways; the shared confirm dialog
(WB.confirm) fits too and refuses a blank reason with a message instead of closing.

The pages are found from the menu itself (``nav.wb-nav a``), so a page another engineer adds
to the menu is checked without touching this test; a menu link that does not answer 200 fails.
"""

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

pytestmark = pytest.mark.integration

__all__ = ["browser", "influx"]  # fixtures


def overflow(page: Page) -> int:
    """How far the page is wider than the phone (0 when it fits)."""
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    return max(0, width - PHONE["width"])


def test_every_page_in_the_menu_fits_a_phone(
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
    subtests: pytest.Subtests,
) -> None:
    link = tmp_path / "indicator.tty"
    with central(ledger_url, mqtt_settings, influx) as api, ScaleThread(link):
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)  # 360 x 740
        nav = page.locator("nav.wb-nav a")
        expect(nav.first).to_be_visible()
        pages = [
            (a.get_attribute("data-nav") or "", a.get_attribute("href") or "") for a in nav.all()
        ]
        assert {key for key, _ in pages} >= {"timbang", "penarikan", "nasabah", "stok", "hari"}
        for key, href in pages:
            with subtests.test(msg=href):
                resp = page.goto(href)
                assert resp is not None
                assert resp.ok, f"{href}: HTTP {resp.status}"
                expect(page.locator(f"nav.wb-nav a[data-nav='{key}']")).to_have_attribute(
                    "aria-current", "page"
                )
                # Its script has drawn what it fetched (a live stream never idles: not networkidle).
                page.wait_for_function("window.WB && WB.pending === 0")
                assert overflow(page) == 0, f"{href} is {overflow(page)} px too wide"
                header = page.locator("header.wb-header").bounding_box()
                assert header is not None
                assert header["height"] <= 64, f"{href}: header {header['height']} px"


def test_the_confirm_dialog_fits_and_refuses_a_blank_reason(
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
        page = attendant_page(browser, gateway, api)
        page.evaluate(
            """() => { window.answer = "open"; WB.confirm({
                 title: "Batalkan setoran? / Void this deposit?",
                 rows: [["Nasabah / Member", "Siti Latuconsina (AMB-0001)"],
                        ["No. setoran / Deposit id", "gw-petugas.0123456789abcdef.12345"]],
                 danger: true, confirmText: "Batalkan setoran / Void deposit",
                 reasonRequired: true,
               }).then((r) => { window.answer = r; }); }"""
        )
        dialog = page.locator("#wb-confirm")
        expect(dialog).to_be_visible()
        ok = page.locator("#wb-confirm-ok")
        # The destructive button is red, not the green of the primary one.
        colour = ok.evaluate("b => getComputedStyle(b).backgroundColor")
        assert colour == "rgb(185, 28, 28)", colour
        assert overflow(page) == 0
        for blank in ("", "   \n  "):
            page.fill("#wb-confirm-reason", blank)
            ok.click()
            expect(page.locator("#wb-confirm-error")).to_have_text(
                "Alasan wajib diisi / A reason is required"
            )
            expect(dialog).to_be_visible()
            assert page.evaluate("window.answer") == "open"
        page.fill("#wb-confirm-reason", "  salah nasabah ")
        ok.click()
        expect(dialog).to_have_count(0)
        page.wait_for_function("window.answer !== 'open'")
        assert page.evaluate("window.answer") == {"reason": "salah nasabah"}
        # Closing without confirming answers null.
        page.evaluate("() => { window.answer = 'open'; }")
        page.evaluate("() => { WB.confirm({title: 'x'}).then((r) => { window.answer = r; }); }")
        page.click("#wb-confirm-cancel")
        expect(dialog).to_have_count(0)
        page.wait_for_function("window.answer === null")
