"""The DLH page's headlines, estimates and map in a real browser (Debian's Chromium through
Playwright) and its JSON behind them, on the demo city set up as a city of twenty TPS of which
one has a fill sensor: the demo's second TPS (tps-benteng) taken out of service, and a city data
file saying the city has 20 TPS (docs/dlh.md, "Data kota / City data").

The tile server is Playwright's: every tile request is refused (the plain map) or answered with
a PNG (the base map), so no test reaches the internet.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from api.pages_dlh import range_text
from api.settings import OSM_TILES, PagesSettings
from tests.auth_helpers import ApiEnv, api_settings
from tests.test_pages import _drop as drop_database
from wastebank import estimates, formats, ledger, reports, services
from wastebank.browser import DESKTOP, PHONE, chromium
from wastebank.config import MqttSettings
from wastebank.sample import deposit_history, fill_history
from wastebank.seed import load_city, seed

pytest.importorskip("playwright")
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect  # noqa: E402

pytestmark = pytest.mark.integration

TILES = OSM_TILES.split("/{z}")[0] + "/**"  # every tile of the default tile server
# a 1x1 PNG: what a reachable tile server answers (Leaflet stretches it to 256 px)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def site(
    running_services: services.ServicesSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiEnv]:
    tmp = tmp_path_factory.mktemp("dlh")
    url = f"sqlite:///{tmp / 'ledger.db'}"
    engine = ledger.make_engine(url)
    try:
        summary = seed(engine, load_city())
        with Session(engine) as session:  # one TPS with a sensor: the market's
            session.execute(
                update(ledger.Tps).where(ledger.Tps.code == "tps-benteng").values(active=False)
            )
            session.commit()
    finally:
        engine.dispose()
    now = datetime.now(UTC)
    deposit_history(url, summary, now=now, months=3, per_member_per_month=3)
    cities = tmp / "cities"
    cities.mkdir()
    ambon = (reports.CITIES_DIR / "ambon.toml").read_text()
    (cities / "ambon.toml").write_text(
        ambon.split("[tps]")[0] + '[tps]\ncount = 20\nsource = "uji / test"\n'
    )
    influx = services.influx_admin_settings(running_services, f"test_dlh_{uuid.uuid4().hex[:10]}")
    asyncio.run(fill_history(influx, ledger_url=url, now=now))
    settings = api_settings(
        mqtt=MqttSettings(port=running_services.mqtt_port),
        influx=influx,
        ledger_url=url,
        pages=PagesSettings(broker_run_dir=tmp / "broker-run"),
        reports=reports.ReportSettings(cities_dir=cities),
    )
    try:
        with ApiEnv(url, settings) as env:
            yield env
    finally:
        asyncio.run(drop_database(influx))


@pytest.fixture(scope="module")
def browser(site: ApiEnv) -> Iterator[Browser]:
    with chromium() as b:
        yield b


def dlh_page(
    browser: Browser,
    site: ApiEnv,
    viewport: dict[str, int],
    tiles: bytes | None | list[Route],
    has_touch: bool | None = None,
) -> tuple[BrowserContext, Page]:
    """The DLH page signed in, its tile server answering ``tiles`` (None: refusing; a list:
    never answering, the requests kept in it)."""
    context = browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        base_url=str(site.client.base_url),
        has_touch=has_touch,
    )

    def tile(route: Route) -> None:
        if tiles is None:
            route.abort("connectionrefused")
        elif isinstance(tiles, list):
            tiles.append(route)
        else:
            route.fulfill(status=200, content_type="image/png", body=tiles)

    context.route(TILES, tile)
    page = context.new_page()
    page.goto("/masuk?next=/dlh")
    username, secret = site.creds["dlh"]
    page.fill("#username", username)
    page.fill("#password", secret)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url.endswith("/dlh")
    return context, page


def test_the_diversion_api_states_its_coverage_and_gives_no_rate_below_it(site: ApiEnv) -> None:
    resp = site.client.get("/api/dlh/diversion", headers=site.bearer("dlh"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    cov = body["coverage"]
    assert (cov["tps_with_sensors"], cov["tps_reporting"], cov["tps_in_city"]) == (1, 1, 20)
    assert (cov["share"], cov["enough"]) == (0.05, False)
    assert "1 dari 20 TPS" in cov["reason"]
    assert body["rate"] is None  # not the city's rate at 1 TPS of 20
    both = body["diverted_t"] + body["tpa_bound_t"]  # this month's: none on its first hours
    covered = body["rate_of_covered_tps"]
    # none when nothing was seen going to the TPA (the month's first hours), never 100 %
    assert covered == (pytest.approx(body["diverted_t"] / both) if body["tpa_bound_t"] else None)
    page = site.client.get("/dlh", headers=site.cookie("dlh"))
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in policy
    assert "script-src 'self';" in policy


def test_the_dlh_page_at_360_px_with_the_tile_server_unreachable(
    browser: Browser, site: ApiEnv
) -> None:
    context, page = dlh_page(browser, site, PHONE, None, has_touch=True)
    try:
        # the diversion headline: not enough data, and what it covers
        expect(page.locator("#diversion-rate")).to_have_text("belum cukup data / not enough data")
        expect(page.locator("#diversion-coverage")).to_contain_text("1 dari 20 TPS kota (5 %)")
        expect(page.locator("#diversion")).to_contain_text("Bukan angka target Jakstrada")
        expect(page.locator("#reduction-target")).to_contain_text("Target Jakstrada 30 %")
        # a definition opens on a tap
        definition = page.locator("#def-diversion")
        expect(definition.locator("p").first).to_be_hidden()
        definition.locator("summary").tap()
        expect(definition.locator("p").first).to_be_visible()
        expect(definition).to_contain_text("80 % TPS kota")
        # the estimates: recycling energy saved, central first with its range
        energy = page.locator("#recycling-energy")
        energy.scroll_into_view_if_needed()
        expect(energy).to_be_visible()
        expect(energy).to_contain_text("Energi dihemat daur ulang")
        expect(energy.locator(".big")).to_have_text(re.compile(r"^\d[\d.]*,\d GJ$"))
        expect(energy).to_contain_text("kWh-setara")
        expect(page.locator("#wte-potential")).to_contain_text("jika dibakar")
        # the map: markers on a plain background, said so, and the TPS list
        expect(page.locator("#tps-map")).to_have_attribute("data-base-map", "none")
        expect(page.locator("#tps-map")).to_have_class(re.compile(r"\bplain\b"))
        expect(page.locator("#map-note")).to_contain_text("Peta dasar tidak dapat dimuat")
        expect(page.locator("#tps-map .leaflet-interactive")).to_have_count(1)
        assert page.locator("#tps-map .leaflet-tile").count() == 0
        expect(page.locator("#tps li[data-tps=tps-batu-merah]")).to_be_visible()
        # labelled controls
        expect(page.get_by_role("meter", name="Isi TPS Pasar Batu Merah")).to_be_visible()
        expect(page.get_by_label("Bulan laporan")).to_be_visible()
        expect(page.get_by_label("Format berkas")).to_be_visible()
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= PHONE["width"], f"the page is {scroll} px wide at 360 px"
        # and the page still works: the monthly report downloads
        page.get_by_label("Format berkas").select_option("csv")
        with page.expect_download() as download:
            page.click("#report button[type=submit]")
        assert download.value.suggested_filename.endswith(".csv")
    finally:
        context.close()


def test_the_base_map_when_the_tile_server_answers(browser: Browser, site: ApiEnv) -> None:
    context, page = dlh_page(browser, site, DESKTOP, PNG)
    try:
        expect(page.locator("#tps-map")).to_have_attribute("data-base-map", "tiles")
        expect(page.locator("#tps-map .leaflet-tile-loaded").first).to_be_visible()
        expect(page.locator("#tps-map .leaflet-control-attribution")).to_contain_text(
            "OpenStreetMap"
        )
        expect(page.locator("#tps-map")).not_to_have_class(re.compile(r"\bplain\b"))
        # a definition opens on hover too
        definition = page.locator("#def-reduction")
        definition.hover()
        expect(definition.locator("#generation-source")).to_be_visible()
        expect(definition).to_contain_text("BPS Kota Ambon")
        page.mouse.move(0, 0)
        expect(definition.locator("#generation-source")).to_be_hidden()
    finally:
        context.close()


def test_the_plain_map_when_the_tile_server_never_answers(browser: Browser, site: ApiEnv) -> None:
    """A network that drops the requests (no refusal, no answer): the page gives up on the base
    map after its 8 s and shows the plain one."""
    pending: list[Route] = []
    context, page = dlh_page(browser, site, DESKTOP, pending)
    try:
        expect(page.locator("#tps-map")).to_have_attribute("data-base-map", "none", timeout=20_000)
        assert pending, "the page asked the tile server for tiles"
        expect(page.locator("#map-note")).to_contain_text("Peta dasar tidak dapat dimuat")
        expect(page.locator("#tps-map .leaflet-interactive")).to_have_count(1)
    finally:
        for route in pending:
            route.abort()
        context.close()


def test_a_chart_of_the_estimates_with_their_ranges(browser: Browser, site: ApiEnv) -> None:
    context, page = dlh_page(browser, site, DESKTOP, None)
    try:
        datasets = page.evaluate(
            """() => {
                const chart = Chart.getChart(document.getElementById("chart-impact-0"));
                return chart.data.datasets.map(d => d.data);
            }"""
        )
        central, ranges = datasets
        assert central
        assert all(lo <= c <= hi for c, (lo, hi) in zip(central, ranges, strict=True))
    finally:
        context.close()


def test_the_reduction_names_the_city_files_sources(site: ApiEnv) -> None:
    gen = reports.generation_for("ambon")
    year = datetime.now(UTC).year
    resp = site.client.get(f"/api/dlh/reduction?year={year}", headers=site.bearer("dlh"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["generation"]["population_source"] == gen.population_source


# ---- the PLTSa (WtE) scenario form ------------------------------------------------------------


def api_scenario(site: ApiEnv, **params: str | int | float) -> dict[str, Any]:
    resp = site.client.get("/api/dlh/wte-scenario", params=params, headers=site.bearer("dlh"))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def shown_range(value: dict[str, float], places: int) -> str:
    """What the page writes for an API range: id-ID, central first, the range after."""
    return range_text(estimates.Range(**value), places)


def test_the_pltsa_form_at_360_px_shows_what_the_api_answers(
    browser: Browser, site: ApiEnv
) -> None:
    context, page = dlh_page(browser, site, PHONE, None, has_touch=True)
    try:
        tonnes = page.get_by_label("Sampah masuk (ton/hari)")
        tonnes.scroll_into_view_if_needed()
        # by default the city's estimated generation: its data file's population x rate
        gen = reports.generation_for("ambon")
        default = round(gen.population * gen.kg_per_capita_day / 1000, 1)
        expect(tonnes).to_have_value(str(default))
        expect(page.locator("#wte-tonnes-hint")).to_contain_text(formats.number(default, 1))
        expect(page.locator("#wte-result")).to_be_hidden()
        tonnes.fill("750")
        page.get_by_label("Kurs, Rp per USD").fill("16000")
        with page.expect_response(lambda r: "/dlh/pltsa?" in r.url) as answer:
            page.get_by_role("button", name="Hitung").click()
        assert answer.value.status == 200
        assert page.url.endswith("/dlh")  # fetched, not the page reloaded
        api = api_scenario(site, tonnes_per_day=750, idr_per_usd=16000)
        for cell, figure, places, written in (
            ("net_mw", "net_electric_mw", 2, "{} MW"),
            ("mwh", "electricity_mwh_per_year", 0, "{} MWh"),
            ("revenue_usd", "revenue_usd_per_year", 0, "USD {}"),
            ("lhv", "lhv_mj_per_kg", 2, "{} MJ/kg"),
            ("fossil_co2", "fossil_co2_t_per_year", 0, "{} t CO2"),
        ):
            expected = written.format(shown_range(api[figure], places))
            expect(page.locator(f"#wte-{cell}")).to_have_text(expected)
        idr = api["revenue_idr_per_year"]
        rp = formats.rupiah
        expect(page.locator("#wte-revenue_idr")).to_have_text(
            f"{rp(idr['central'])} ({rp(idr['low'])}–{rp(idr['high'])})"
        )
        expect(page.locator("#wte-tariff_band")).to_have_text(api["tariff"]["band"]["id"])
        expect(page.locator("#wte-mix")).to_have_text("SIPSN 2023")
        # id-ID: dot thousands, comma decimals, central first, the range in brackets
        assert re.fullmatch(
            r"\d{1,3}(\.\d{3})*,\d\d \(\d[\d.]*,\d\d–\d[\d.]*,\d\d\) MW",
            page.locator("#wte-net_mw").inner_text(),
        )
        expect(page.locator("#wte-warnings")).to_contain_text(
            "Perpres 35/2018 dicabut oleh Perpres 109/2025"
        )
        no_overflow(page)
        # a bad value: the 422's reason next to its field, the figures left as they were
        tonnes.fill("-5")
        page.get_by_role("button", name="Hitung").click()
        refused = site.client.get("/dlh/pltsa?tonnes_per_day=-5", headers=site.cookie("dlh"))
        assert refused.status_code == 422
        assert refused.json()["field"] == "tonnes_per_day"
        error = page.locator("#wte-error-tonnes_per_day")
        expect(error).to_have_text(refused.json()["detail"])
        expect(error).to_contain_text("tonnes_per_day harus di atas 0")
        expect(tonnes).to_have_attribute("aria-invalid", "true")
        # the API refuses the same value
        api_refused = site.client.get(
            "/api/dlh/wte-scenario?tonnes_per_day=-5", headers=site.bearer("dlh")
        )
        assert api_refused.status_code == 422
        page.get_by_label("Efisiensi listrik bersih").fill("0.9")
        tonnes.fill("750")
        page.get_by_role("button", name="Hitung").click()
        expect(page.locator("#wte-error-efficiency")).to_contain_text("efficiency must be within")
        expect(error).to_be_hidden()
        no_overflow(page)
    finally:
        context.close()


def no_overflow(page: Page) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= PHONE["width"], f"the page is {scroll} px wide at 360 px"


def test_the_pltsa_figures_on_the_page_cookie_and_without_javascript(site: ApiEnv) -> None:
    api = api_scenario(site, tonnes_per_day=1200, regulation="perpres_109_2025")
    resp = site.client.get(
        "/dlh/pltsa?tonnes_per_day=1200&regulation=perpres_109_2025&efficiency=",
        headers=site.cookie("dlh"),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["scenario"] == api  # the API's answer, on the page's cookie
    assert body["shown"]["net_mw"] == f"{shown_range(api['net_electric_mw'], 2)} MW"
    assert body["shown"]["revenue_idr"] == "–"  # no exchange rate given
    # the form sent without JavaScript: the dashboard with the same figures
    page = site.client.get(
        "/dlh?tonnes_per_day=1200&regulation=perpres_109_2025", headers=site.cookie("dlh")
    )
    assert page.status_code == 200
    assert f'id="wte-net_mw" data-wte="net_mw">{body["shown"]["net_mw"]}<' in page.text
    refused = site.client.get("/dlh?tonnes_per_day=abc", headers=site.cookie("dlh"))
    assert 'data-error-for="tonnes_per_day" role="alert">bukan angka / not a number' in (
        refused.text
    )
    for query, field in (
        ("tonnes_per_day=", "tonnes_per_day"),
        ("tonnes_per_day=10&idr_per_usd=1.5", "idr_per_usd"),
        ("tonnes_per_day=10&idr_per_usd=5", "idr_per_usd"),
        ("tonnes_per_day=10&regulation=perpres_1_1900", "regulation"),
        ("tonnes_per_day=nan", "tonnes_per_day"),
    ):
        r = site.client.get(f"/dlh/pltsa?{query}", headers=site.cookie("dlh"))
        assert (r.status_code, r.json()["field"]) == (422, field), query
    # staff of the city only, as the dashboard
    assert (
        site.client.get(
            "/dlh/pltsa?tonnes_per_day=10", headers=site.cookie("citizen_a")
        ).status_code
        == 403
    )
    no_login = site.client.get("/dlh/pltsa?tonnes_per_day=10", follow_redirects=False)
    assert no_login.status_code == 303
