"""Review 27, finding 4: on ``/petugas/stok`` at 360 px the sub-tabs read "JualSale" and
"ResiduResidue" (each button's two languages side by side in one flex row) and "Transfer" broke
mid-word ("Transf/er"). Each tab now reads its Indonesian name over its English one, no word cut.

The page is the gateway's own (rendered by the real app over httpx's ASGI transport, the central
API faked at the transport seam: tests/gateway_helpers.py), with its own styles and scripts,
shown in Debian's Chromium at 360 x 740 (wastebank.browser.PHONE).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from gateway.http import local_api
from tests.gateway_helpers import PASSWORD, FakeCentral, attendant_service, gateway_settings
from wastebank.browser import PHONE, chromium

pytest.importorskip("playwright")
from playwright.sync_api import Route  # noqa: E402

STATIC = Path(__file__).resolve().parents[1] / "gateway" / "static"
BASE = "http://gw.test"
TYPES = {".css": "text/css", ".js": "text/javascript"}

# For each tab: every word of its Indonesian name and of its English one (its <small>) on one
# line (a word cut at the edge has two boxes), the English below the Indonesian, nothing
# overflowing the button.
LAYOUT = """(button) => {
  const words = (node) => {
    const out = [];
    const text = node.textContent;
    for (const m of text.matchAll(/\\S+/g)) {
      const r = document.createRange();
      r.setStart(node, m.index);
      r.setEnd(node, m.index + m[0].length);
      out.push({ word: m[0], lines: r.getClientRects().length, rect: r.getBoundingClientRect() });
    }
    return out;
  };
  const indonesian = words(button.firstChild);
  const english = words(button.querySelector("small").firstChild);
  // below: the English glyphs start under the middle of the Indonesian's last line (side by
  // side they start at its top; stacked, glyph boxes may overlap by a pixel or two)
  const last = indonesian[indonesian.length - 1].rect;
  const top = Math.min(...english.map((w) => w.rect.top));
  return {
    cut: [...indonesian, ...english].filter((w) => w.lines !== 1).map((w) => w.word),
    below: top > (last.top + last.bottom) / 2,
    inside: button.scrollWidth <= button.clientWidth,
  };
}"""


async def _stock_page(tmp_path: Path) -> str:
    """The stock page's HTML as the gateway serves it to a signed-in attendant."""
    async with attendant_service(gateway_settings(tmp_path), FakeCentral()) as svc:
        app = local_api.http_app(svc.gw, svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE
        ) as client:
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            page = await client.get("/petugas/stok", headers={"Accept": "text/html"})
            assert page.status_code == 200, page.text
            return page.text


@pytest.mark.integration
def test_the_stock_tabs_read_apart_and_unbroken_at_360_px(tmp_path: Path) -> None:
    html = asyncio.run(_stock_page(tmp_path))

    def serve(route: Route) -> None:
        path = httpx.URL(route.request.url).path
        if path == "/petugas/stok":
            route.fulfill(status=200, content_type="text/html", body=html)
        elif path.startswith("/petugas/static/"):
            name = STATIC / path.removeprefix("/petugas/static/")
            route.fulfill(status=200, content_type=TYPES[name.suffix], body=name.read_bytes())
        else:  # the page's data: not what is checked here
            route.abort()

    with chromium() as browser:
        context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
        context.route(f"{BASE}/**", serve)
        page = context.new_page()
        page.goto(f"{BASE}/petugas/stok")
        tabs = page.locator(".tabs button")
        assert tabs.count() == 3
        got = {tabs.nth(i).inner_text(): tabs.nth(i).evaluate(LAYOUT) for i in range(3)}
        fine = {"cut": [], "below": True, "inside": True}
        assert got == dict.fromkeys(got, fine)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{width} px wide at {PHONE['width']} px"
        context.close()
