"""The pages over HTTP, without a browser: the static files (own CSS/JS, Chart.js and Leaflet
from node_modules, installed by `make install` from package-lock.json: no CDN at run time) and
what a page does when a service is missing. (Async tests: Playwright's sync API keeps an event
loop running in tests/test_pages.py's module, where they cannot run.)"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.settings import PagesSettings
from tests.auth_helpers import PASSWORD, add_users, api_settings, with_csrf
from wastebank.config import InfluxSettings


async def test_vendor_files_come_from_node_modules_and_a_missing_one_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    installed = create_app(api_settings())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=installed), base_url="http://test"
    ) as client:
        for path in (
            "/static/vendor/chart.js/chart.umd.min.js",
            "/static/vendor/leaflet/leaflet.js",
            "/static/vendor/leaflet/leaflet.css",
            "/static/pages.css",
            "/static/pages.js",
        ):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/static/vendor/chart.js/../../package.json")).status_code == 404

    with caplog.at_level(logging.ERROR, logger="api.pages"):
        missing = create_app(api_settings(pages=PagesSettings(node_modules=tmp_path)))
    assert "make install" in caplog.text
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=missing), base_url="http://test"
    ) as client:
        resp = await client.get("/static/vendor/chart.js/chart.umd.min.js")
        assert resp.status_code == 503
        assert "make install" in resp.text
        assert (await client.get("/static/pages.css")).status_code == 200


@pytest.mark.integration
async def test_the_dashboard_without_influxdb_and_devices_without_broker_files(
    ledger_url: str,
) -> None:
    add_users(ledger_url, ("dlh", "admin"))
    app = create_app(
        api_settings(ledger_url=ledger_url, influx=InfluxSettings(url="http://127.0.0.1:1"))
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            form = await with_csrf(client, {"username": "dlh-ambon", "password": PASSWORD})
            assert (await client.post("/masuk", data=form)).headers["location"] == "/dlh"
            page = await client.get("/dlh")
            assert page.status_code == 200
            assert "InfluxDB tidak terjangkau" in page.text  # the ledger's figures still shown
            assert 'id="chart-months"' in page.text
            english = await client.get("/dlh", params={"lang": "en"})
            assert "InfluxDB unreachable" in english.text
            assert english.cookies["wb_lang"] == "en"
            assert "DLH dashboard" in (await client.get("/dlh")).text  # kept by the cookie
            report = await client.get("/dlh/laporan", params={"month": "2026-10", "format": "csv"})
            assert report.status_code == 200
            assert report.headers["content-type"].startswith("text/csv")
            client.cookies.clear()

            form = await with_csrf(client, {"username": "admin", "password": PASSWORD})
            assert (await client.post("/masuk", data=form)).headers["location"] == "/admin"
            devices = await client.get("/admin/perangkat")
            assert "WASTEBANK_PAGES__BROKER_RUN_DIR" in devices.text
            added = await client.post(
                "/admin/perangkat",
                data=await with_csrf(
                    client, {"kind": "gateway", "site": "bs-rijali", "device_id": "gw-09"}
                ),
            )
            assert added.status_code == 409


@pytest.mark.integration
async def test_an_unknown_language_is_passed_over_for_the_readers_own(ledger_url: str) -> None:
    """``?lang=`` other than id or en neither changes the language nor is kept: an English
    reader (by the cookie) following a link with ``?lang=fr`` reads English still."""
    async with (
        LifespanManager(create_app(api_settings(ledger_url=ledger_url))) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):

        async def lang(params: dict[str, str]) -> tuple[str, str | None]:
            page = await client.get("/masuk", params=params)
            assert page.status_code == 200
            return page.text.split('<html lang="')[1][:2], page.cookies.get("wb_lang")

        assert await lang({"lang": "fr"}) == ("id", None)  # no cookie yet: Indonesian, nothing kept
        assert await lang({"lang": "en"}) == ("en", "en")
        assert await lang({"lang": "fr"}) == ("en", None)  # the cookie's, unchanged
        assert await lang({"lang": "EN"}) == ("en", None)
        assert await lang({}) == ("en", None)
        assert await lang({"lang": "id"}) == ("id", "id")
