"""Withdrawals at the bank, in a real browser on real processes (issue 15, must-show): a citizen
requests a withdrawal on their page of the central API; the attendant approves and pays it on
the gateway's page; the citizen sees "dibayar" and the new balance. Above the second-person
limit the attendant who approved cannot pay (the page says a second attendant must, the API's
refusal in Indonesian); a second attendant of the bank does. A payment asked while the central
API is down is queued ("jangan serahkan uang"), lands once when it is back, never twice.
Phone size (360 x 740), no sideways scroll.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import Processes, deposit_event, wait_until
from tests.ledger_helpers import apply_deposit
from wastebank import ledger
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.money_rules import MoneyRules

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Locator, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    MEMBER,
    TIMEOUT_MS,
    ScaleThread,
    attendant_page,
    balance,
    browser,
    influx,
    start_gateway,
)

pytestmark = pytest.mark.integration
__all__ = ["browser", "influx"]  # fixtures, imported for their use here

LIMIT = 50_000  # the second-person rule above Rp50.000 in this test's money rules


def fits(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width} px wide on a {PHONE['width']} px phone"


@pytest.fixture
def funded(ledger_url: str) -> str:
    """Rp400.000 for AMB-0001 (a deposit straight into the ledger: withdrawals are this
    test's subject, not the scale)."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            apply_deposit(s, deposit_event(1, net_g=100_000))
            s.commit()
    finally:
        engine.dispose()
    return ledger_url


class Central:
    """The central API on a fixed port, stopped and started again (an outage the gateway sees
    as connection refused), a fresh app each time on the same ledger."""

    def __init__(self, ledger_url: str, mqtt: MqttSettings, influx: InfluxSettings) -> None:
        self.settings = api_settings(
            mqtt=mqtt,
            influx=influx,
            ledger_url=ledger_url,
            money=MoneyRules(second_approval_above_idr=LIMIT),
        )
        self.env = ApiEnv(ledger_url, self.settings)

    def __enter__(self) -> Central:
        self.env.__enter__()
        self.port = int(self.env.client.base_url.port or 0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.env.__exit__(*exc)

    def stop(self) -> None:
        self.env.server.should_exit = True
        self.env.thread.join(30)
        assert not self.env.thread.is_alive(), "the API did not stop"

    def start(self) -> None:
        import uvicorn

        from api.app import create_app

        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            proxy_headers=False,
        )
        self.env.server = uvicorn.Server(config)
        self.env.thread = threading.Thread(target=self.env.server.run, name="api", daemon=True)
        self.env.thread.start()
        wait_until(lambda: self.env.server.started or not self.env.thread.is_alive(), timeout=30)
        assert self.env.server.started, "the API did not start again"


@pytest.fixture
def stack(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    funded: str,
    tmp_path: Path,
) -> Iterator[tuple[Central, str]]:
    link = tmp_path / "indicator.tty"
    with Central(funded, mqtt_settings, influx) as api, ScaleThread(link):
        base = str(api.env.client.base_url)
        yield api, start_gateway(processes, tmp_path, mqtt_settings, base, link)


def second_attendant(browser: Browser, gateway: str, api: ApiEnv) -> Page:
    """The bank's second attendant (``attendant_1b``), signed in on a phone of their own."""
    context = browser.new_context(viewport=PHONE, base_url=gateway)  # type: ignore[arg-type]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto("/petugas/penarikan")
    username, password = api.creds["attendant_1b"]
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("#login")
    expect(page.locator("header")).to_contain_text("Ona Latumahina")
    return page


def citizen_page(browser: Browser, api: ApiEnv) -> Page:
    context = browser.new_context(viewport=PHONE, base_url=str(api.client.base_url))  # type: ignore[arg-type]
    page = context.new_page()
    page.goto("/masuk")
    username, pin = api.creds["citizen_a"]
    page.fill("#username", username)
    page.fill("#password", pin)
    with page.expect_navigation():
        page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(f"/nasabah/{MEMBER}$"))
    return page


def ask(api: ApiEnv, amount: int) -> int:
    """The member asks through the API (as the app on their phone would)."""
    resp = api.client.post(
        f"/api/members/{MEMBER}/withdrawals",
        json={"amount_idr": amount},
        headers=api.bearer("citizen_a"),
    )
    assert resp.status_code == 201, resp.text
    wid: int = resp.json()["id"]
    return wid


def payments(api: ApiEnv, wid: int) -> int:
    with Session(api.engine) as s:
        legs = s.scalar(
            select(func.count())
            .select_from(ledger.JournalEntry)
            .where(ledger.JournalEntry.txn_ref == f"withdrawal:{wid}")
        )
    return int(legs or 0) // 2


def card(page: Page, wid: int, status: str) -> Locator:
    """Show ``status``'s list and return the withdrawal's card (a Locator)."""
    page.click(f".filters button[data-filter={status}]")
    found = page.locator(f"#withdrawals article[data-withdrawal-id='{wid}']")
    expect(found).to_be_visible()
    return found


def decide(page: Page, wid: int, status: str, action: str) -> None:
    card(page, wid, status).locator(f"button[data-action={action}]").click()
    expect(page.locator("#wb-confirm-rows")).to_contain_text("Siti Latuconsina")
    page.click("#wb-confirm-ok")
    expect(page.locator("#wb-confirm")).to_have_count(0)


def test_a_withdrawal_is_approved_and_paid_at_the_bank_and_the_citizen_sees_it(
    browser: Browser, stack: tuple[Central, str], tmp_path: Path
) -> None:
    central, gateway = stack
    api = central.env
    before = balance(api)

    # The citizen asks on their page of the central API.
    citizen = citizen_page(browser, api)
    citizen.fill("#amount_idr", "20000")
    with citizen.expect_navigation():
        citizen.click("#withdraw-form button[type=submit]")
    expect(citizen.locator("#withdrawals tbody tr").first).to_contain_text("diajukan")
    small = int(
        citizen.locator("#withdrawals tbody tr[data-withdrawal-id]").first.get_attribute(
            "data-withdrawal-id"
        )
        or 0
    )

    # The attendant sees it with the member's name and what they may still withdraw.
    page = attendant_page(browser, gateway, api)
    page.click("nav a[data-nav=penarikan]")
    expect(page).to_have_url(re.compile("/petugas/penarikan$"))
    row = card(page, small, "requested")
    expect(row).to_contain_text(f"Siti Latuconsina ({MEMBER})")
    expect(row).to_contain_text("Rp20.000")
    expect(row.locator(".available")).to_contain_text(f"Rp{before - 20_000:,}".replace(",", "."))
    fits(page)
    page.screenshot(path=tmp_path / "penarikan.png", full_page=True)

    decide(page, small, "requested", "approve")
    expect(card(page, small, "approved").locator(".status")).to_have_text("disetujui / approved")
    decide(page, small, "approved", "pay")
    expect(page.locator("#wd-result-text")).to_contain_text("serahkan Rp20.000")
    expect(page.locator("#wd-result-hold")).to_have_text("")
    expect(card(page, small, "paid").locator(".status")).to_have_text("dibayar / paid")
    href = page.locator("#wd-result-receipt").get_attribute("href")
    assert href == f"/petugas/struk/penarikan/{small}"
    fits(page)
    page.goto(href)
    expect(page.locator("body")).to_contain_text("STRUK PENARIKAN")
    expect(page.locator("body")).to_contain_text("Rp20.000")
    page.go_back()

    # The citizen sees "dibayar", when, and the new balance.
    citizen.reload()
    paid_row = citizen.locator(f"#withdrawals tr[data-withdrawal-id='{small}']")
    expect(paid_row).to_contain_text("dibayar")
    expect(paid_row.locator(".paid-at")).to_contain_text(re.compile(r"\d{4} \d\d\.\d\d WIT$"))
    expect(citizen.locator("#saldo")).to_have_text(f"Rp{before - 20_000:,}".replace(",", "."))
    assert balance(api) == before - 20_000

    # Above the second-person limit: the attendant who approved may not pay it out.
    big = ask(api, LIMIT + 10_000)
    decide(page, big, "requested", "approve")
    row = card(page, big, "approved")
    expect(row.locator(".next-step")).to_contain_text(
        "perlu petugas kedua / needs a second attendant"
    )
    expect(row.locator("button[data-action=pay]")).to_have_count(0)
    refusal = page.evaluate(
        "id => WB.api('POST', '/withdrawals/' + id + '/pay', {}).then(() => '', e => e.message)",
        big,
    )
    assert refusal.startswith("perlu petugas kedua / needs a second attendant: penarikan ")
    assert "Anda setujui sendiri" in refusal
    other = second_attendant(browser, gateway, api)
    decide(other, big, "approved", "pay")
    expect(card(other, big, "paid").locator(".next-step")).to_contain_text("oleh petugas-bm-05")
    assert payments(api, big) == 1
    fits(other)

    # A payment asked while the central API is down: queued, and the page says not to hand over
    # the cash; it lands once when the API is back.
    offline = ask(api, 30_000)
    decide(page, offline, "requested", "approve")
    central.stop()
    decide(page, offline, "approved", "pay")
    expect(page.locator("#wd-result-hold")).to_contain_text(
        "antri — belum dibayar, jangan serahkan uang"
    )
    row = card(page, offline, "queued")
    expect(row.locator(".next-step")).to_contain_text("jangan serahkan uang")
    expect(row.locator("button[data-action=pay]")).to_have_count(0)  # never asked twice
    fits(page)
    page.screenshot(path=tmp_path / "penarikan-antri.png", full_page=True)
    assert payments(api, offline) == 0
    central.start()
    expect(card(page, offline, "paid").locator(".status")).to_have_text("dibayar / paid")
    assert payments(api, offline) == 1
    assert balance(api) == before - 20_000 - (LIMIT + 10_000) - 30_000
    citizen.reload()
    expect(citizen.locator(f"#withdrawals tr[data-withdrawal-id='{offline}']")).to_contain_text(
        "dibayar"
    )
