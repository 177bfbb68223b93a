"""The attendant pages' frame on the gateway (issue 15, the page contract): its static files, the
login form for a page asked without a session (and back to it after the login), the bank's name
in the header, and bad input answered in Indonesian-first words, never FastAPI's raw 422 list.

The gateway's app is the real one over httpx's ASGI transport; the central API is faked at the
transport seam (tests/gateway_helpers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from starlette.requests import Request

from gateway.http import local_api
from gateway.http.attendant import AttendantService
from gateway.http.routing import Routes, parse_body
from gateway.http.validation import REFUSED, message
from tests.gateway_helpers import BANK, PASSWORD, FakeCentral, attendant_service, gateway_settings

Gw = tuple[AttendantService, httpx.AsyncClient]


class NamedCentral(FakeCentral):
    """The fake central API, with the city's list of banks (the bank's name)."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/banks":
            return httpx.Response(
                200,
                json=[
                    {"code": "bs-lain", "name": "Bank Sampah Lain"},
                    {"code": BANK, "name": "Bank Sampah Batu Merah"},
                ],
            )
        return super().__call__(request)


class AmountIn(msgspec.Struct, kw_only=True):
    amount_idr: int


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    async with attendant_service(gateway_settings(tmp_path), NamedCentral()) as svc:
        app = local_api.http_app(svc.gw, svc)

        # A page's write with a whole-Rupiah amount, as the withdrawal and sale routes have.
        extra = Routes(prefix="/petugas")

        @extra.post("/api/test-amount")
        async def amount(request: Request) -> dict[str, int]:
            body = await parse_body(request, AmountIn)
            return {"amount_idr": body.amount_idr}

        app.router.routes.extend(extra.routes)

        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client:
            yield svc, client


async def login(client: httpx.AsyncClient, username: str = "petugas-bm-01") -> str:
    resp = await client.post(
        "/petugas/api/session", json={"username": username, "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    token = str(resp.json()["csrf_token"])
    client.headers["X-CSRF-Token"] = token
    return token


async def test_static_files_are_the_pages_scripts_and_styles_only(gateway: Gw) -> None:
    _, client = gateway
    # Public: the login form needs them before anybody is signed in.
    css = await client.get("/petugas/static/petugas.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".danger" in css.text
    js = await client.get("/petugas/static/petugas.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert "window.WB" in js.text
    assert (await client.get("/petugas/static/attendant.js")).status_code == 200
    # Nothing else: no other type, no dot file, no way out of gateway/static/.
    for name in ("../settings.py", "..%2Fsettings.py", ".hidden.js", "x.py", "none.js", "a/b.js"):
        resp = await client.get(f"/petugas/static/{name}")
        assert resp.status_code in (401, 404), name  # ../ is resolved by the client: the gate
        assert "BaseSettings" not in resp.text
    # The old address of the script is gone with its exception to the gate.
    assert (await client.get("/petugas/attendant.js")).status_code == 401


async def test_a_page_asked_without_a_session_comes_back_after_the_login(gateway: Gw) -> None:
    _, client = gateway
    html = {"Accept": "text/html"}
    # A browser's navigation to a page: to the login form, which remembers the page.
    resp = await client.get("/petugas/penarikan", headers=html)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/petugas?next=/petugas/penarikan"
    form = await client.get(resp.headers["location"], headers=html)
    assert form.status_code == 200
    assert 'name="next" value="/petugas/penarikan"' in form.text
    # JSON routes stay a plain 401 (the script reloads the page on one).
    assert (await client.get("/petugas/api/state", headers=html)).status_code == 401
    assert (await client.get("/petugas/penarikan")).status_code == 401  # not a browser
    # Back there after the login; never to another site.
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    base = {"username": "petugas-bm-01", "password": PASSWORD, "csrf_token": token}
    done = await client.post("/petugas/masuk", data={**base, "next": "/petugas/penarikan"})
    assert done.status_code == 303
    assert done.headers["location"] == "/petugas/penarikan"
    for evil in ("//evil.example", "https://evil.example/petugas", "/petugas/../x"):
        client.cookies.clear()
        form = await client.get("/petugas", headers=html)
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        resp = await client.post("/petugas/masuk", data={**base, "csrf_token": token, "next": evil})
        assert resp.headers["location"] == "/petugas", evil


async def test_the_header_names_the_bank_once_synced(gateway: Gw) -> None:
    svc, client = gateway
    page = await client.get("/petugas")
    assert f'id="bank-name" title="{BANK}' in page.text  # not synced yet: its code
    await login(client)
    assert await svc.sync_members(svc.tokens["petugas-bm-01"])
    page = await client.get("/petugas")
    assert ">Bank Sampah Batu Merah</strong>" in page.text
    assert "Petugas-Bm-01" in page.text  # the attendant's name (the fake's title case)
    assert 'data-nav="timbang" aria-current="page"' in page.text
    for href in ("/petugas/penarikan", "/petugas/nasabah", "/petugas/stok", "/petugas/hari-ini"):
        assert f'href="{href}"' in page.text


async def test_every_bad_field_of_a_write_is_answered_at_once_in_the_same_bytes(
    gateway: Gw,
) -> None:
    # Every bad field in the body's order, each once, in one answer counted once: the exact
    # bytes the pages and `wastebank attend` read (docs/attendant.md, "How a field is read").
    _, client = gateway
    await login(client)
    before = REFUSED["/petugas/api/members"]
    resp = await client.post("/petugas/api/members", json={"phone": "081234567890"})
    assert resp.status_code == 422
    assert resp.headers["cache-control"] == "no-store"
    no, name = (
        "nomor nasabah wajib diisi / member number is required",
        "nama wajib diisi / name is required",
    )
    assert (
        resp.content
        == (
            f'{{"detail":"{no}; {name}","errors":[{{"field":"member_no","message":"{no}"}},'
            f'{{"field":"name","message":"{name}"}}]}}'
        ).encode()
    )
    assert REFUSED["/petugas/api/members"] == before + 1
    sale = {"key": [1], "collector": "ud-x", "category": "pet", "grams": 12, "note": {"x": 1}}
    resp = await client.post("/petugas/api/stock/sales", json={**sale, "price_per_kg_idr": 3000})
    assert resp.status_code == 422
    assert resp.content == (
        b'{"detail":"key harus teks / key must be text; note harus teks / note must be text",'
        b'"errors":[{"field":"key","message":"key harus teks / key must be text"},'
        b'{"field":"note","message":"note harus teks / note must be text"}]}'
    )


async def test_bad_input_is_answered_in_words_not_a_422_list(gateway: Gw) -> None:
    _, client = gateway
    await login(client)
    before = REFUSED["/petugas/api/test-amount"]
    total = (await client.get("/health")).json()["bad_requests"]
    resp = await client.post("/petugas/api/test-amount", json={"amount_idr": "1e5"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["detail"] == "jumlah harus bilangan bulat Rupiah / amount must be whole Rupiah"
    assert body["errors"] == [{"field": "amount_idr", "message": body["detail"]}]
    assert REFUSED["/petugas/api/test-amount"] == before + 1
    assert (await client.get("/health")).json()["bad_requests"] == total + 1  # the operator's
    resp = await client.post(
        "/petugas/api/test-amount",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.json()["detail"].startswith("isi permintaan bukan JSON yang sah")
    assert (await client.post("/petugas/api/test-amount", json={})).json()["detail"] == (
        "jumlah wajib diisi / amount is required"
    )
    # A void's reason of spaces: refused with a sentence.
    resp = await client.post("/petugas/api/deposits/x/void", json={"reason": "   "})
    assert resp.status_code == 422
    assert resp.json()["detail"] == "alasan wajib diisi / reason is required"


async def test_a_bad_login_form_shows_the_form_again_with_the_message(gateway: Gw) -> None:
    _, client = gateway
    html = {"Accept": "text/html"}
    form = await client.get("/petugas", headers=html)
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    resp = await client.post(
        "/petugas/masuk", data={"username": "", "password": "x", "csrf_token": token}, headers=html
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    assert "nama pengguna wajib diisi / username is required" in resp.text
    assert 'id="login-form"' in resp.text


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            {"type": "int_from_float", "loc": ("body", "net_g")},
            "berat harus bilangan bulat gram / weight must be whole grams",
        ),
        (
            {"type": "greater_than_equal", "loc": ("body", "amount_idr"), "ctx": {"ge": 1}},
            "jumlah minimal 1 / amount at least 1",
        ),
        (
            {"type": "string_too_long", "loc": ("body", "reason"), "ctx": {"max_length": 500}},
            "alasan maksimal 500 karakter / reason takes at most 500 characters",
        ),
        (
            {"type": "something_new", "loc": ("query", "q")},
            "pencarian tidak sah / search is not valid",
        ),
    ],
)
def test_each_error_reads_as_a_sentence(error: dict[str, object], text: str) -> None:
    assert message(error) == text
