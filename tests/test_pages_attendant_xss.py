"""Server data shown as text, never as markup, on every attendant page and the citizen's page, in
a real browser at 360 x 740 on real processes (the stack of tests/attendant_stack.py; issue 15's
review).

A member, a category, a pengepul, a refusal's reason and a day close's note each carry markup
that would run a script if a page put it into the page as HTML (``<img src=x onerror=...>``,
``<script>``): the weighing page's search, the members page, the withdrawals list and its
confirm dialog, a withdrawal's receipt, the stock page, the day page and its day sheet, and
the member's own page must show it as the very text typed, with no element made from it and no
script run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv
from tests.conftest import Processes, deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import ledger
from wastebank.browser import PHONE
from wastebank.config import InfluxSettings, MqttSettings

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Locator, Page, expect  # noqa: E402

from tests.attendant_stack import (  # noqa: E402
    BANK,
    MEMBER,
    ScaleThread,
    attendant_page,
    browser,
    central,
    influx,
    start_gateway,
)

pytestmark = pytest.mark.integration
__all__ = ["browser", "influx"]  # fixtures, imported for their use here

NAME = "<img src=x onerror=window.__xss=1>"  # the member (AMB-0001)
CATEGORY = "<img src=x onerror=window.__xss=2>PET"  # the category pet (at most 100 characters)
COLLECTOR = "<script>window.__xss=3</script>UD Galala"  # the pengepul ud-galala-plastik
REASON = '"><img src=x onerror=window.__xss=4>'  # a refusal's reason (from an attribute, too)
NOTE = "</td><img src=x onerror=window.__xss=5>"  # a day close's note
WIT = ZoneInfo("Asia/Jayapura")


@pytest.fixture
def hostile(ledger_url: str) -> str:
    """The demo city with the markup in its names, and Rp400.000 for the member (a deposit
    straight into the ledger)."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            apply_deposit(s, deposit_event(1, net_g=100_000))
            member = ledger.get_member(s, MEMBER)
            assert member is not None
            member.name = NAME
            category = s.scalar(select(ledger.Category).where(ledger.Category.code == "pet"))
            assert category is not None
            category.name_id = CATEGORY
            collector = s.scalar(
                select(ledger.Collector).where(ledger.Collector.code == "ud-galala-plastik")
            )
            assert collector is not None
            collector.name = COLLECTOR
            s.commit()
    finally:
        engine.dispose()
    return ledger_url


@pytest.fixture
def stack(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx: InfluxSettings,
    hostile: str,
    tmp_path: Path,
) -> Iterator[tuple[ApiEnv, str]]:
    link = tmp_path / "indicator.tty"
    with central(hostile, mqtt_settings, influx) as api, ScaleThread(link):
        yield api, start_gateway(processes, tmp_path, mqtt_settings, str(api.client.base_url), link)


def as_text(page: Page, where: Locator, *texts: str) -> None:
    """``texts`` shown in ``where`` as typed; no element made from them, no script run."""
    for text in texts:
        expect(where).to_contain_text(text)
    assert page.locator("img[src='x']").count() == 0, page.url
    assert page.evaluate("window.__xss") is None, page.url
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url}: {width} px wide"


def test_names_reasons_and_notes_are_text_on_every_page(
    browser: Browser, stack: tuple[ApiEnv, str]
) -> None:
    api, gateway = stack
    page = attendant_page(browser, gateway, api)  # 360 x 740

    # The weighing page: the category's button, the member found by a word of the name.
    expect(page.locator("#categories button[data-category=pet]")).to_contain_text(CATEGORY)
    page.fill("#member-q", "onerror")
    as_text(page, page.locator("#members"), NAME)
    page.press("#member-q", "Enter")  # the one member found is taken
    as_text(page, page.locator("#selected-member"), NAME)

    # The members page: found by number, chosen.
    page.goto("/petugas/nasabah")
    page.fill("#m-q", MEMBER)
    page.click(f"#m-results button[data-member='{MEMBER}']")
    as_text(page, page.locator("#m-selected"), NAME)

    # The withdrawals page: the member's request, refused with a reason; its receipt.
    resp = api.client.post(
        f"/api/members/{MEMBER}/withdrawals",
        json={"amount_idr": 20_000},
        headers=api.bearer("citizen_a"),
    )
    assert resp.status_code == 201, resp.text
    wid = resp.json()["id"]
    page.goto("/petugas/penarikan")
    item = page.locator(f"#withdrawals article[data-withdrawal-id='{wid}']")
    as_text(page, item, NAME)
    item.locator("button[data-action=reject]").click()
    as_text(page, page.locator("#wb-confirm-rows"), NAME)
    page.fill("#wb-confirm-reason", REASON)
    page.click("#wb-confirm-ok")
    expect(page.locator("#wb-confirm")).to_have_count(0)
    page.click(".filters button[data-filter=rejected]")
    as_text(page, item, NAME, REASON)
    page.goto(f"/petugas/struk/penarikan/{wid}")
    as_text(page, page.locator("#receipt-paper"), NAME, REASON)

    # The stock page: the pengepul to sell to, the category's stock.
    page.goto("/petugas/stok")
    as_text(page, page.locator("#sale-collector"), COLLECTOR)
    as_text(page, page.locator("#stock-table"), CATEGORY)

    # The day page and its 58 mm sheet: the close's note.
    today = datetime.now(WIT).date()
    resp = api.client.post(
        f"/api/banks/{BANK}/days/{today}/close",
        json={"counted_cash_idr": 0, "note": NOTE},
        headers=api.bearer("attendant_1"),
    )
    assert resp.status_code == 201, resp.text
    page.goto("/petugas/hari-ini")
    as_text(page, page.locator("#cash-note"), NOTE)
    page.goto(f"/petugas/struk/hari/{today}")
    as_text(page, page.locator("#receipt-paper"), NOTE)

    # The member's own page on the central API: their name, the reason they were refused.
    citizen = browser.new_context(viewport=PHONE, base_url=str(api.client.base_url))  # type: ignore[arg-type]
    own = citizen.new_page()
    own.goto("/masuk")
    username, pin = api.creds["citizen_a"]
    own.fill("#username", username)
    own.fill("#password", pin)
    with own.expect_navigation():
        own.click("button[type=submit]")
    expect(own).to_have_url(re.compile(f"/nasabah/{MEMBER}$"))
    as_text(own, own.locator("body"), NAME, REASON)
    citizen.close()
