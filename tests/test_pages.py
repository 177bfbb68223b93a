"""The pages in a real browser (Debian's Chromium through Playwright, wastebank/browser.py),
against the app served by uvicorn on a loopback port, on a SQLite ledger seeded with the demo
city and months of sample deposits (wastebank/sample.py), and TPS fill readings in an InfluxDB
database of the module's own.

Citizens at 360 px (no horizontal scrolling), DLH staff and admins at desktop size.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from api.settings import PagesSettings
from tests.auth_helpers import ApiEnv, api_settings
from wastebank import ledger, services
from wastebank.browser import DESKTOP, PHONE, chromium
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx
from wastebank.sample import deposit_history, fill_history
from wastebank.seed import load_city, seed

pytest.importorskip("playwright")
from playwright.sync_api import Browser, BrowserContext, Page, expect  # noqa: E402

pytestmark = pytest.mark.integration

MEMBER_A = "AMB-0001"


@pytest.fixture(scope="module")
def site(
    running_services: services.ServicesSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiEnv]:
    tmp = tmp_path_factory.mktemp("pages")
    url = f"sqlite:///{tmp / 'ledger.db'}"
    engine = ledger.make_engine(url)
    try:
        summary = seed(engine, load_city())
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    deposit_history(url, summary, now=now, months=6, per_member_per_month=3)
    influx = services.influx_admin_settings(running_services, f"test_pages_{uuid.uuid4().hex[:10]}")
    asyncio.run(fill_history(influx, ledger_url=url, now=now))
    settings = api_settings(
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        ledger_url=url,
        pages=PagesSettings(broker_run_dir=tmp / "broker-run"),
    )
    try:
        with ApiEnv(url, settings) as env:
            yield env
    finally:
        asyncio.run(_drop(influx))


async def _drop(settings: InfluxSettings) -> None:
    influx = Influx(settings)
    try:
        await influx.drop_database()
    finally:
        await influx.aclose()


@pytest.fixture(scope="module")
def browser(site: ApiEnv) -> Iterator[Browser]:
    """After ``site``: Playwright's sync API runs an event loop of its own in this thread, where
    ``site`` calls asyncio.run."""
    with chromium() as b:
        yield b


def signed_in(
    browser: Browser, site: ApiEnv, role: str, viewport: dict[str, int]
) -> tuple[BrowserContext, Page]:
    """A fresh browser context signed in as ``role`` through the login form."""
    context = browser.new_context(viewport=viewport, base_url=str(site.client.base_url))  # type: ignore[arg-type]
    page = context.new_page()
    username, secret = site.creds[role]
    page.goto("/masuk")
    page.fill("#username", username)
    page.fill("#password", secret)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return context, page


def chart_points(page: Page, canvas_id: str) -> list[int]:
    """The number of data points in each dataset of the Chart.js chart on ``canvas_id``, once
    the chart is drawn (after a navigation the heading can show before the scripts ran)."""
    page.wait_for_function(
        "(id) => typeof Chart !== 'undefined' && Chart.getChart(document.getElementById(id))",
        arg=canvas_id,
    )
    points: list[int] = page.evaluate(
        """(id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return chart ? chart.data.datasets.map(d => d.data.filter(v => v > 0).length) : [];
        }""",
        canvas_id,
    )
    return points


def id_number(text: str) -> float:
    """``1.234,5`` (id-ID) as a number."""
    return float(text.replace(".", "").replace(",", "."))


def no_horizontal_overflow(page: Page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at a {width} px viewport"


# ---- citizens -----------------------------------------------------------------------------------


def test_a_citizen_cannot_open_another_members_page(browser: Browser, site: ApiEnv) -> None:
    context, page = signed_in(browser, site, "citizen_b", PHONE)
    try:
        assert page.url.endswith("/nasabah/AMB-0002")
        resp = page.goto(f"/nasabah/{MEMBER_A}")
        assert resp is not None
        assert resp.status == 404
        expect(page.locator("h1")).to_contain_text("Tidak ditemukan / Not found")
        expect(page.locator("body")).not_to_contain_text("Siti")
        pdf = page.request.get(f"/nasabah/{MEMBER_A}/buku-tabungan?format=csv")
        assert pdf.status == 404
    finally:
        context.close()
    # and the JSON API refuses it too
    api = site.client.get(f"/api/members/{MEMBER_A}/balance", headers=site.bearer("citizen_b"))
    assert api.status_code == 404


def test_the_citizen_page_works_at_360_px(browser: Browser, site: ApiEnv) -> None:
    context, page = signed_in(browser, site, "citizen_a", PHONE)
    try:
        assert page.url.endswith(f"/nasabah/{MEMBER_A}")
        for selector in ("#saldo", "#impact", "#chart-categories", "#withdraw-form", "#passbook"):
            page.locator(selector).scroll_into_view_if_needed()
            expect(page.locator(selector)).to_be_visible()
        expect(page.locator("#saldo")).to_contain_text("Rp")
        expect(page.locator("#kept")).to_contain_text("kg")
        expect(page.locator("#impact")).to_contain_text("Perkiraan")  # an estimate, and says so
        # net CO2e avoided, central first, its range and what it is (FIGURES' label and basis)
        co2e = page.locator("#co2e").inner_text()
        assert re.fullmatch(r"-?\d[\d.]*,\d kg CO2e", co2e), co2e
        assert co2e != "0,0 kg CO2e"
        expect(page.locator("#impact")).to_contain_text("CO2e terhindar (bersih)")
        span = page.locator("#co2e-range").inner_text()
        found = re.fullmatch(r"rentang: (-?[\d.]+,\d)–(-?[\d.]+,\d) kg", span)
        assert found, span
        low, high = found.groups()
        central = id_number(co2e.split()[0])
        assert id_number(low) <= central <= id_number(high)
        assert id_number(low) < id_number(high)
        definition = page.locator("#def-co2e")
        definition.locator("summary").click()
        expect(definition).to_contain_text("seumur timbunan")
        points = chart_points(page, "chart-categories")
        assert points
        assert points[0] > 0
        assert page.locator("#passbook tbody tr").count() > 1
        no_horizontal_overflow(page, PHONE["width"])
        csv = page.request.get(f"/nasabah/{MEMBER_A}/buku-tabungan?format=csv")
        assert csv.status == 200
        assert "text/csv" in csv.headers["content-type"]
        with page.expect_download() as download:
            page.click("#statement-pdf")
        assert download.value.suggested_filename == f"buku-tabungan-{MEMBER_A}.pdf"
    finally:
        context.close()


def test_a_withdrawal_request_shows_with_its_status(browser: Browser, site: ApiEnv) -> None:
    context, page = signed_in(browser, site, "citizen_a", PHONE)
    try:
        before = page.locator("#withdrawals tbody tr[data-withdrawal-id]").count()
        page.fill("#amount_idr", "10000")
        with page.expect_navigation():
            page.click("#withdraw-form button[type=submit]")
        expect(page.locator("#notice")).to_contain_text("Permintaan penarikan terkirim")
        rows = page.locator("#withdrawals tbody tr[data-withdrawal-id]")
        assert rows.count() == before + 1
        expect(rows.first).to_contain_text("Rp10.000")
        expect(rows.first).to_contain_text("diajukan")
        no_horizontal_overflow(page, PHONE["width"])
        # a refusal comes back on the page, in words
        page.fill("#amount_idr", "999999999")
        with page.expect_navigation():
            page.click("#withdraw-form button[type=submit]")
        expect(page.locator("#form-error")).to_contain_text("saldo tidak cukup")
        # the attendant sees it through the JSON API, as requested
        listed = site.client.get(
            f"/api/members/{MEMBER_A}/withdrawals", headers=site.bearer("attendant_1")
        ).json()
        assert listed[0]["status"] == "requested"
        assert listed[0]["amount_idr"] == 10_000
        # in English after the switch
        page.click("#lang-switch")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#withdrawals tbody tr[data-withdrawal-id]").first).to_contain_text(
            "requested"
        )
        expect(page.locator("#balance")).to_contain_text("Balance")
        page.goto(f"/nasabah/{MEMBER_A}")  # the choice is kept (cookie)
        expect(page.locator("#impact h2")).to_have_text("My impact")
    finally:
        context.close()


def test_a_form_without_the_csrf_token_is_refused(browser: Browser, site: ApiEnv) -> None:
    context, page = signed_in(browser, site, "citizen_a", PHONE)
    try:
        url = f"/nasabah/{MEMBER_A}/penarikan"
        missing = page.request.post(url, form={"amount_idr": "10000"}, max_redirects=0)
        assert missing.status == 403
        assert "CSRF" in missing.text() or "Formulir" in missing.text()
        wrong = page.request.post(
            url, form={"amount_idr": "10000", "csrf_token": "x" * 43}, max_redirects=0
        )
        assert wrong.status == 403
        token = page.locator("#withdraw-form input[name=csrf_token]").get_attribute("value")
        assert token
        ok = page.request.post(
            url, form={"amount_idr": "10000", "csrf_token": token}, max_redirects=0
        )
        assert ok.status == 303
        # logging out needs it too
        assert page.request.post("/keluar", max_redirects=0).status == 403
        with page.expect_navigation():
            page.click("#logout")
        assert "/masuk" in page.url
        resp = page.goto(f"/nasabah/{MEMBER_A}")
        assert resp is not None
        assert "/masuk?next=" in page.url
    finally:
        context.close()


# ---- DLH ------------------------------------------------------------------------------------


def test_the_dlh_dashboard_renders_its_charts_with_data(browser: Browser, site: ApiEnv) -> None:
    context = browser.new_context(viewport=DESKTOP, base_url=str(site.client.base_url))  # type: ignore[arg-type]
    # no test reaches the internet: the default tile server (OpenStreetMap) refuses
    context.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    page = context.new_page()
    try:
        page.goto("/dlh")  # not signed in: the login page, then back here
        assert "/masuk?next=/dlh" in page.url
        username, secret = site.creds["dlh"]
        page.fill("#username", username)
        page.fill("#password", secret)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.endswith("/dlh")
        months = chart_points(page, "chart-months")
        assert len(months) >= 3, months
        assert sum(months) > 0, months
        kecamatan = chart_points(page, "chart-kecamatan")
        assert kecamatan == [2]  # the demo city's banks are in 2 kecamatan
        assert page.locator("#table-kecamatan tbody tr").count() >= 2
        expect(page.locator("#table-kecamatan")).to_contain_text("Sirimau")
        expect(page.locator("#reduction")).to_contain_text("Target Jakstrada 30 %")
        expect(page.locator("#generation-source")).to_contain_text("BPS Kota Ambon")
        # the demo city's file has no count of its TPS: no rate is the city's (docs/dlh.md)
        expect(page.locator("#diversion-rate")).to_have_text("belum cukup data / not enough data")
        expect(page.locator("#diversion-coverage")).to_contain_text("jumlah TPS kota belum diisi")
        expect(page.locator("#diversion-detail")).to_contain_text("Ke TPA (perkiraan)")
        expect(page.locator("#recycling-energy")).to_contain_text("GJ")
        expect(page.locator("#table-impacts tfoot")).to_contain_text("(")  # central (low–high)
        tps = page.locator("#tps li[data-tps=tps-batu-merah]")
        expect(tps).to_contain_text("TPS Pasar Batu Merah")
        expect(tps.locator(".badge.alert")).to_contain_text("1")  # raised past 80 %
        expect(tps.locator(".alert-text")).to_contain_text("hampir penuh")
        offline = page.locator("#tps li[data-tps=tps-benteng] .offline-sensor")
        expect(offline).to_contain_text("us-03: sensor luring")  # silent for 3 hours
        fill = tps.locator(".bar.fill").get_attribute("aria-valuenow")
        assert fill is not None
        assert int(fill) >= 80
        # the map: a marker per TPS on a plain background (the tile server unreachable)
        expect(page.locator("#tps-map .leaflet-interactive")).to_have_count(2)
        expect(page.locator("#tps-map")).to_have_attribute("data-base-map", "none")
        assert page.locator("#tps-map .leaflet-tile").count() == 0
        expect(page.locator("#tps-map")).to_contain_text("Nusaniwe")
        with page.expect_download() as download:
            page.select_option("#report-format", "csv")
            page.click("#report button[type=submit]")
        assert download.value.suggested_filename.endswith(".csv")
        # English
        page.click("#lang-switch")
        expect(page.locator("h1")).to_contain_text("DLH dashboard")
        assert sum(chart_points(page, "chart-months")) > 0
    finally:
        context.close()


def test_staff_pages_refuse_the_wrong_role(browser: Browser, site: ApiEnv) -> None:
    context, page = signed_in(browser, site, "citizen_a", PHONE)
    try:
        for path in ("/dlh", "/admin", "/admin/impor"):
            resp = page.goto(path)
            assert resp is not None
            assert resp.status == 403, path
            expect(page.locator("h1")).to_contain_text("Tidak diizinkan / Not allowed")
            no_horizontal_overflow(page, PHONE["width"])
    finally:
        context.close()
    context, page = signed_in(browser, site, "dlh", DESKTOP)
    try:
        resp = page.goto("/admin")
        assert resp is not None
        assert resp.status == 403
    finally:
        context.close()


# ---- admins ---------------------------------------------------------------------------------


def test_admin_sets_a_price_imports_members_and_adds_a_device(
    browser: Browser, site: ApiEnv, tmp_path_factory: pytest.TempPathFactory
) -> None:
    context, page = signed_in(browser, site, "admin", DESKTOP)
    try:
        assert page.url.endswith("/admin")
        expect(page.locator("#banks")).to_contain_text("bs-nusaniwe")
        page.click("a[href='/admin/harga/bs-nusaniwe']")
        page.select_option("#category_code", "kaleng")
        page.fill("#price_idr", "2750")
        with page.expect_navigation():
            page.click("#price-form button[type=submit]")
        expect(page.locator("#notice")).to_contain_text("Harga disimpan")
        expect(page.locator("#price-table tr[data-category=kaleng]")).to_contain_text("Rp2.750")
        # a unit that buys at its induk's prices has no form
        page.goto("/admin/harga/bs-rijali")
        assert page.locator("#price-form").count() == 0

        members = tmp_path_factory.mktemp("import") / "nasabah.csv"
        members.write_text(
            "no_nasabah;nama;kode_bank;kelurahan\n"
            "AMB-0901;Yohana Pattiasina;bs-nusaniwe;Benteng\n"
            "AMB-0001;Sudah Ada;bs-batu-merah;Rijali\n"
        )
        page.goto("/admin/impor")
        page.set_input_files("#file", str(members))
        page.select_option("#mode", "valid-only")
        with page.expect_navigation():
            page.click("#import-form button[type=submit]")
        report = page.locator("#import-report")
        expect(report).to_contain_text("1 diimpor / imported, 1 ditolak / refused")
        expect(report.locator("tr.import-refused")).to_contain_text("AMB-0001")
        api = site.client.get("/api/members/AMB-0901", headers=site.bearer("admin"))
        assert api.status_code == 200
        assert api.json()["name"] == "Yohana Pattiasina"

        page.goto("/admin/perangkat")
        expect(page.locator("#device-table")).to_contain_text("Belum ada perangkat")
        page.select_option("#kind", "sensor")
        page.fill("#site", "tps-benteng")
        page.fill("#device_id", "us-09")
        with page.expect_navigation():
            page.click("#device-form button[type=submit]")
        expect(page.locator("#device-table")).to_contain_text("tps-benteng.us-09")
        assert len(page.locator("#device-password").inner_text()) >= 20
        # the same device again: refused as a conflict, the registry unchanged
        page.select_option("#kind", "sensor")
        page.fill("#site", "tps-benteng")
        page.fill("#device_id", "us-09")
        with page.expect_navigation() as again:
            page.click("#device-form button[type=submit]")
        assert again.value is not None
        assert again.value.status == 409
        expect(page.locator("#form-error")).to_contain_text("sudah terdaftar / already registered")
        expect(page.locator("#device-password")).to_have_count(0)
    finally:
        context.close()
