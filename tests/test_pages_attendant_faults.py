"""An overloaded scale, said out loud (issue 16), on real processes: the simulated indicator on a
pty sends its overload line, `wastebank gateway` raises one alert, and the attendant's phone
(360 x 740) says "Kelebihan beban / Overload", not "moving"; /scales and /health say it too."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from firmware_sim.kiosk import CAPACITY_G
from tests.conftest import Processes, wait_until
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings

pytest.importorskip("playwright")
from playwright.sync_api import Browser, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    ScaleThread,
    attendant_page,
    browser,
    central,
    influx,
    start_gateway,
)

pytestmark = pytest.mark.integration


def test_an_overloaded_scale_is_told_apart_from_a_moving_one_and_raises_one_alert(
    browser: Browser,
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    ledger_url: str,
    tmp_path: Path,
) -> None:
    link = tmp_path / "indicator.tty"
    with central(ledger_url, mqtt_settings, influx) as api, ScaleThread(link) as scale:
        gateway = start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)
        page = attendant_page(browser, gateway, api)
        state = page.locator("#scale-state")
        expect(state).to_have_attribute("data-state", "ok")  # the empty platform, settled

        scale.place_load(2 * CAPACITY_G)  # far past its capacity: the indicator says OL
        expect(state).to_have_attribute("data-state", "overload")
        expect(state).to_have_text("⚠ Kelebihan beban / Overload")
        expect(state).to_have_class("muted fault")
        expect(page.locator("#weight")).to_have_text("—")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]

        (view,) = page.request.get("/scales").json()  # the local API, with the page's session
        assert (view["scale_id"], view["state"], view["grams"]) == ("scale-01", "overload", None)
        assert view["state_text"] == "Kelebihan beban / Overload"
        public = httpx.get(f"{gateway}/health", timeout=5).json()
        assert [(s["scale_id"], s["state"]) for s in public["scales"]] == [("scale-01", "overload")]
        assert [(a["code"], a["subject"]) for a in public["alerts_active"]] == [
            ("overload", "scale-01")
        ]

        scale.place_load(0)  # taken off: the indicator weighs again
        expect(state).to_have_attribute("data-state", "ok")
        expect(state).not_to_have_class("muted fault")

        def cleared() -> bool:
            active: object = httpx.get(f"{gateway}/health", timeout=5).json()["alerts_active"]
            return active == []

        wait_until(cleared, timeout=30)
        log = processes.log("gateway")
        assert log.count("alert overload raised") == 1, log
