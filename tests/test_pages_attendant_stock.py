"""Issue 15's must-show on the stock and day pages, in Debian's Chromium at 360 x 740 on real
processes (tests/attendant_stack.py): deposits recorded from the simulated scale; a sale
recorded on the stock page lowers the stock by its kg (read from the central API and shown on
the page); the day's close on the day page equals the ledger's totals (the API's day and an
independent sum over the ledger's deposits, withdrawals and sales through the API), its
difference recorded and audited."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv
from tests.conftest import Processes, settings_env, wait_until
from wastebank import ledger
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.formats import kg, rupiah

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    BANK,
    MEMBER,
    ScaleThread,
    attendant_page,
    browser,
    central,
    influx,
    record,
    start_gateway,
    start_ingester,
)

pytestmark = pytest.mark.integration

WIT = ZoneInfo("Asia/Jayapura")


def _get(api: ApiEnv, url: str, who: str = "attendant_1", **params: Any) -> Any:
    resp = api.client.get(url, params=params or None, headers=api.bearer(who))
    assert resp.status_code == 200, resp.text
    return resp.json()


def _held(api: ApiEnv, category: str = "pet") -> int:
    return int(_get(api, f"/api/banks/{BANK}/stock")["stock_g"].get(category, 0))


def _fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url}: {width} px wide at {PHONE['width']} px"


def _today(at: str) -> bool:
    return datetime.fromisoformat(at).astimezone(WIT).date() == datetime.now(WIT).date()


def _ledger_sums(api: ApiEnv) -> dict[str, int]:
    """The day's figures summed here from the ledger's own records through the API: every
    member's deposits (voids excluded), the bank's withdrawals paid, its sales."""
    grams = rupiahs = 0
    for m in _get(api, f"/api/banks/{BANK}/members", limit=1000):
        for d in _get(api, f"/api/members/{m['member_no']}/transactions", limit=1000):
            if not d["voided"] and _today(d["measured_at"]):
                grams += d["net_g"]
                rupiahs += d["amount_idr"]
    paid = [
        w
        for w in _get(api, f"/api/banks/{BANK}/withdrawals")
        if w["status"] == "paid" and _today(w["paid_at"])
    ]
    sales = [s for s in _get(api, f"/api/banks/{BANK}/sales") if _today(s["occurred_at"])]
    return {
        "grams": grams,
        "amount_idr": rupiahs,
        "cash_out": sum(w["amount_idr"] for w in paid if w["method"] == "cash"),
        "cash_in": sum(s["revenue_idr"] for s in sales if s["payment_method"] == "cash"),
        "sold_g": sum(s["grams"] for s in sales),
    }


def _pay_cash(api: ApiEnv, amount: int) -> None:
    """A cash withdrawal asked, approved and paid at the bank (the withdrawals page's work)."""
    with Session(api.engine) as s:
        w = ledger.request_withdrawal(s, MEMBER, amount, "cash", requested_by=f"nasabah:{MEMBER}")
        ledger.approve_withdrawal(s, w.id, author="petugas-bm-01")
        ledger.pay_withdrawal(s, w.id, author="petugas-bm-01")
        s.commit()


def test_a_sale_lowers_the_stock_and_the_days_close_equals_the_ledger(
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
        page = attendant_page(browser, gateway, api)  # a phone, 360 x 740

        # Deposits from the simulated scale, into the ledger's stock.
        held = _held(api)
        page.fill("#member-q", "amb 0001")
        page.press("#member-q", "Enter")
        expect(page.locator("#selected-member")).to_contain_text(MEMBER)
        record(page, scale, 12_500)
        wait_until(lambda: _held(api) == held + 12_500, timeout=30)
        scale.place_load(0)
        expect(page.locator("#weight")).to_have_text("0,00 kg")
        _pay_cash(api, 20_000)

        # The stock page shows the ledger's stock; a sale typed in kg with a decimal comma.
        page.goto("/petugas/stok")
        before = _held(api)
        pet = page.locator("#stock-table tr[data-category=pet] td.held")
        expect(pet).to_have_text(kg(before))
        page.select_option("#sale-collector", "ud-galala-plastik")
        page.select_option("#sale-category", "pet")
        page.fill("#sale-kg", "4,25")
        page.fill("#sale-price", "4.500")
        expect(page.locator("#sale-total")).to_have_text("Rp19.125")
        _fits(page)
        page.click("#sale-submit")
        expect(page.locator("#move-result-text")).to_contain_text("tercatat di buku besar")
        assert _held(api) == before - 4_250  # the ledger's stock, lowered by the sale's kg
        expect(pet).to_have_text(kg(before - 4_250))
        expect(pet).to_have_attribute("data-held-g", str(before - 4_250))
        (sale,) = _get(api, f"/api/banks/{BANK}/sales")
        assert (sale["grams"], sale["revenue_idr"], sale["payment_method"]) == (
            4_250,
            19_125,
            "cash",
        )
        receipt = page.locator("#move-receipt").get_attribute("href") or ""
        assert receipt.startswith("/petugas/struk/penjualan/")
        page.goto(receipt)
        expect(page.locator("body")).to_contain_text("Rp19.125")
        expect(page.locator("body")).to_contain_text("UD Galala Plastik")

        # The day page: the ledger's totals, equal to the sums made here from its records.
        page.goto("/petugas/hari-ini")
        today = datetime.now(WIT).date().isoformat()
        day = _get(api, f"/api/banks/{BANK}/days/{today}")
        sums = _ledger_sums(api)
        assert day["deposits_total"]["grams"] == sums["grams"] > 0
        assert day["deposits_total"]["amount_idr"] == sums["amount_idr"]
        assert day["sales_total"]["grams"] == sums["sold_g"] == 4_250
        assert day["cash"]["in_idr"] == sums["cash_in"] == 19_125
        assert day["cash"]["out_idr"] == sums["cash_out"] == 20_000
        total = page.locator("#deposits-total")
        expect(total).to_contain_text(kg(sums["grams"]))
        expect(total).to_contain_text(rupiah(sums["amount_idr"]))
        expect(page.locator("#cash-in")).to_have_text(rupiah(sums["cash_in"]))
        expect(page.locator("#cash-out")).to_have_text(rupiah(sums["cash_out"]))
        _fits(page)

        # Close with the counted cash: the difference is shown before confirming.
        opening = 50_000
        expected = opening + sums["cash_in"] - sums["cash_out"]
        counted = expected - 1_000
        expect(page.locator("#opening-row")).to_be_visible()  # the bank's first close
        page.fill("#opening-cash", f"{opening:,}".replace(",", "."))
        page.fill("#counted-cash", str(counted))
        page.click("#close-submit")
        rows = page.locator("#wb-confirm-rows")
        expect(rows).to_contain_text(rupiah(expected))
        expect(rows).to_contain_text("-Rp1.000")
        _fits(page)
        page.click("#wb-confirm-ok")
        expect(page.locator("#close-state")).to_contain_text("Hari ditutup")
        expect(page.locator("#cash-difference")).to_have_text("-Rp1.000")
        expect(page.locator("#close-section")).to_be_hidden()

        closed = _get(api, f"/api/banks/{BANK}/days/{today}")["close"]
        assert closed["cash"]["expected_idr"] == expected  # the ledger's, as summed here
        assert (closed["counted_cash_idr"], closed["difference_idr"]) == (counted, -1_000)
        assert closed["closed_by"] == "petugas-bm-01"
        audit = _get(api, "/api/audit", who="admin", entity="day_close")
        assert [(a["action"], a["actor"]) for a in audit] == [("day.close", "petugas-bm-01")]
        assert "difference -Rp1.000" in audit[0]["summary"]
        again = api.client.post(
            f"/api/banks/{BANK}/days/{today}/close",
            json={"counted_cash_idr": expected},
            headers=api.bearer("attendant_1"),
        )
        assert again.status_code == 409, again.text  # one close a day

        # The 58 mm day sheet.
        sheet = page.locator("#print-58").get_attribute("href") or ""
        assert sheet == f"/petugas/struk/hari/{today}"
        page.goto(sheet)
        body = page.locator("body")
        expect(body).to_contain_text("HARI DITUTUP")
        expect(body).to_contain_text(re.compile(r"Selisih / Difference\s*-Rp1\.000"))
        _fits(page)
