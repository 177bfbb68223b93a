"""Receipts that match the ledger (issue 15), end to end on real processes in Debian's Chromium at
phone size: an admin changes a price through the central API; the attendant's next deposit
receipt shows the new price within 60 s, and its amount is what the ledger credited.

simulated indicator (pty) -> `wastebank gateway` (the page, its receipts) -> Mosquitto ->
`wastebank ingest` -> the ledger; the central API (uvicorn) that the admin uses, that the gateway
syncs prices from and asks what the ledger applied (GET /api/banks/{bank}/deposits?event_id=).

The bug this pins: the gateway showed the price it had cached when the load was recorded
(Rp1.800/kg, Rp26.820) while the ledger credited the price in force (Rp22.350).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Processes, settings_env, wait_until
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.formats import rupiah, unit_price

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    BANK,
    MEMBER,
    ScaleThread,
    attendant_page,
    balance,
    browser,
    central,
    influx,
    start_gateway,
    start_ingester,
)

pytestmark = pytest.mark.integration

__all__ = ["browser", "influx"]  # fixtures used by name

PRICE_S = 60.0
"""The promise: an admin's price is on the attendant's next receipt within a minute."""
NEW_PRICE, NET_G = 1500, 14_900  # the figures: Rp22.350 credited


def credited(api: Any, event_id: str) -> dict[str, Any] | None:
    """The ledger's deposit ``event_id`` in the member's history (None until applied)."""
    resp = api.client.get(
        f"/api/members/{MEMBER}/transactions", headers=api.bearer("admin"), params={"limit": 50}
    )
    assert resp.status_code == 200, resp.text
    return next((d for d in resp.json() if d["event_id"] == event_id), None)


def fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def test_an_admins_new_price_is_on_the_next_receipt_and_its_amount_is_the_ledgers(
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
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)
        expect(page.locator("#categories")).to_contain_text("Rp4.000/kg")  # the list at login
        before = balance(api)

        # The admin lowers the price of PET now (the central API's price page does the same).
        changed_at = time.monotonic()
        put = api.client.put(
            f"/api/banks/{BANK}/prices/pet",
            json={"price_idr": NEW_PRICE},
            headers=api.bearer("admin"),
        )
        assert put.status_code == 200, put.text

        # The attendant's next deposit, right away: whatever the gateway's cached list said at
        # that moment, the receipt ends up with the ledger's price and amount.
        page.fill("#member-q", "latuconsina")
        page.click(f"#members button[data-member={MEMBER}]")
        page.click("#categories button[data-category=pet]")
        expect(page.locator("#record")).to_be_enabled()
        page.click("#record")
        expect(page.locator("#scale-state")).to_have_attribute("data-armed", "yes")
        scale.place_load(NET_G)
        expect(page.locator("#receipt")).to_be_visible()
        event_id = page.locator("#r-event").inner_text().strip()
        assert event_id

        left_ms = max(1.0, PRICE_S - (time.monotonic() - changed_at)) * 1000
        amount = rupiah(NET_G * NEW_PRICE // 1000)
        assert amount == "Rp22.350"
        # The receipt panel: the new price and the ledger's amount, no longer an estimate.
        price = unit_price(NEW_PRICE, "kg")
        expect(page.locator("#r-price")).to_have_text(price, timeout=left_ms)
        expect(page.locator("#r-amount")).to_have_text(amount, timeout=left_ms)

        # The ledger: what it credited is what the receipt says.
        wait_until(lambda: credited(api, event_id) is not None, timeout=30)
        deposit = credited(api, event_id)
        assert deposit is not None
        assert (deposit["price_per_kg_idr"], deposit["amount_idr"]) == (NEW_PRICE, 22_350)
        wait_until(lambda: balance(api) == before + deposit["amount_idr"], timeout=30)

        # The printable 58 mm receipt: the ledger's figures, not marked as an estimate.
        left_ms = max(1.0, PRICE_S - (time.monotonic() - changed_at)) * 1000
        page.goto(f"/petugas/struk/setoran/{event_id}")
        paper = page.locator("#receipt-paper")
        expect(paper).to_have_attribute("data-estimate", "false", timeout=left_ms)
        expect(page.locator("#receipt-total")).to_have_text(rupiah(deposit["amount_idr"]))
        expect(paper.locator("[data-label=Harga] .v")).to_have_text(price)
        expect(paper.locator("[data-label=Berat] .v")).to_have_text("14,90 kg")
        expect(paper.locator("[data-label=Nasabah] .v")).to_have_text("Siti Latuconsina")
        expect(paper.locator("[data-label=Petugas] .v")).to_have_text("Nurlela Tuanaya")
        expect(page.locator("#receipt-estimate")).to_have_count(0)
        expect(page.locator("#receipt-ref")).to_have_text(event_id)
        assert time.monotonic() - changed_at < PRICE_S
        fits(page)
        # Printed on 58 mm paper: the receipt alone (no header, nav or buttons), 48 mm wide.
        page.emulate_media(media="print")
        expect(page.locator("header")).to_be_hidden()
        expect(page.locator("#browser-print")).to_be_hidden()
        expect(paper).to_be_visible()
        width_px = paper.evaluate("el => el.getBoundingClientRect().width")
        assert abs(width_px - 48 / 25.4 * 96) < 2, width_px  # 48 mm at CSS's 96 px an inch
        page.emulate_media(media="screen")
        page.screenshot(path=tmp_path / "struk.png", full_page=True)
