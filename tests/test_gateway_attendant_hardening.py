"""The attendant pages' routes as an attacker or a careless hand would use them (issue 15's
review): a PIN slip opens only for the attendant who issued it and is kept by no cache; a
receipt reference or member number that is not one is refused in words, never a 500 nor
another route of the central API; a sale whose total the ledger cannot take is refused at
once, not queued to fail later.

The gateway's app is the real one over httpx's ASGI transport; the central API is faked at the
transport seam (tests/gateway_helpers.py), recording what it was asked."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from gateway.http import local_api
from gateway.http.attendant import AttendantService
from tests.gateway_helpers import PASSWORD, FakeCentral, attendant_service, gateway_settings


class RecordingCentral(FakeCentral):
    """The fake central API, keeping the path of every request it was sent."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.url.path)
        return super().__call__(request)


Gw = tuple[AttendantService, RecordingCentral, httpx.AsyncClient, httpx.AsyncClient]


async def sign_in(client: httpx.AsyncClient, username: str) -> None:
    resp = await client.post(
        "/petugas/api/session", json={"username": username, "password": PASSWORD}
    )
    assert resp.status_code == 200, resp.text
    client.headers["X-CSRF-Token"] = resp.json()["csrf_token"]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    """Two attendants of the bank signed in at its gateway, each in a browser of their own;
    the receipt printer a file."""
    fake = RecordingCentral()
    printer = {"kind": "file", "path": tmp_path / "printer"}
    async with attendant_service(gateway_settings(tmp_path, printer=printer), fake) as svc:
        transport = httpx.ASGITransport(app=local_api.http_app(svc.gw, svc))
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://gw.test") as first,
            httpx.AsyncClient(transport=transport, base_url="http://gw.test") as second,
        ):
            await sign_in(first, "petugas-bm-01")
            await sign_in(second, "petugas-bm-02")
            yield svc, fake, first, second


async def test_a_pin_slip_opens_and_prints_only_for_the_attendant_who_issued_it(
    gateway: Gw,
) -> None:
    _, _, issuer, other = gateway
    issued = await issuer.post("/petugas/api/members/AMB-0099/pin", json={})
    assert issued.status_code == 200, issued.text
    slip_url, ref = issued.json()["slip_url"], issued.json()["slip_ref"]
    pin = issued.json()["pin"]

    # the same link in another attendant's session: not found, and no PIN in the answer
    page = await other.get(slip_url)
    assert page.status_code == 404
    assert "hanya untuk petugas yang membuatnya" in page.text
    assert pin not in page.text
    as_json = await other.get(f"/petugas/api/struk/pin/{ref}")
    assert as_json.status_code == 404
    assert pin not in as_json.text
    printed = await other.post(f"/petugas/api/struk/pin/{ref}/cetak")
    assert printed.status_code == 404

    # its issuer sees and prints it
    page = await issuer.get(slip_url)
    assert page.status_code == 200
    assert pin in page.text
    as_json = await issuer.get(f"/petugas/api/struk/pin/{ref}")
    assert as_json.status_code == 200
    assert pin in as_json.json()["text"]
    printed = await issuer.post(f"/petugas/api/struk/pin/{ref}/cetak")
    assert printed.status_code == 200, printed.text


async def test_the_answers_carrying_a_pin_are_kept_by_no_cache(gateway: Gw) -> None:
    _, _, issuer, _ = gateway
    issued = await issuer.post("/petugas/api/members/AMB-0099/pin", json={"reset": True})
    assert issued.status_code == 200, issued.text
    assert issued.headers["cache-control"] == "no-store"
    slip = await issuer.get(f"/petugas/api/struk/pin/{issued.json()['slip_ref']}")
    assert slip.status_code == 200
    assert slip.headers["cache-control"] == "no-store"
    page = await issuer.get(issued.json()["slip_url"])
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("ref", ["²", "١٢", "12a", "99999999999"])
async def test_a_withdrawal_receipt_of_no_such_number_is_not_found(gateway: Gw, ref: str) -> None:
    # "²" is a digit to str.isdigit() that int() refuses: it was a 500
    _, _, client, _ = gateway
    page = await client.get(f"/petugas/struk/penarikan/{ref}")
    assert page.status_code == 404, page.text[:300]
    assert "tidak ada" in page.text


@pytest.mark.parametrize("no", ["AMB-0001?x=1", "AMB-0001#x", "..", ".hidden"])
async def test_a_member_number_that_is_not_one_never_reaches_the_central_api(
    gateway: Gw, no: str
) -> None:
    _, fake, client, _ = gateway
    quoted = httpx.URL(f"/petugas/api/members/{no.replace('?', '%3F').replace('#', '%23')}/sms")
    fake.asked.clear()
    asked = [
        await client.get(quoted),
        await client.put(quoted, json={"sms_opt_in": True}),
        await client.post(str(quoted).replace("/sms", "/pin"), json={}),
        await client.post(str(quoted).replace("/sms", "/cards"), json={"uid": "0A0B0C0D"}),
    ]
    for resp in asked:
        assert resp.status_code in (404, 422), (resp.request.url, resp.text)
    assert [p for p in fake.asked if p.startswith("/api/members")] == []


async def test_a_writes_input_is_refused_in_the_order_it_always_was(gateway: Gw) -> None:
    # gateway.http.routing.parse_input: the body is read first, then the CSRF token, then the
    # path and the body's fields, refused together (the order FastAPI checked them in)
    _, fake, client, _ = gateway
    fake.asked.clear()
    bad_json = {"content": b"{", "headers": {"content-type": "application/json"}}
    forged = {"X-CSRF-Token": "x" * 64}
    resp = await client.put("/petugas/api/members/AMB-0001/sms", **bad_json)
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("isi permintaan bukan JSON yang sah")
    # a body that is not JSON is refused as such even with a forged token...
    resp = await client.post(
        "/petugas/api/withdrawals/1/reject",
        content=b"{",
        headers={"content-type": "application/json", **forged},
    )
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("isi permintaan bukan JSON yang sah")
    # ...while a JSON body of bad fields with a forged token is a 403, the fields unread
    resp = await client.put(
        "/petugas/api/members/..x/sms", json={"sms_opt_in": "x"}, headers=forged
    )
    assert resp.status_code == 403
    # with the right token, a bad member number and a bad field are named in one answer
    resp = await client.put("/petugas/api/members/..x/sms", json={"sms_opt_in": "x"})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["member_no", "sms_opt_in"]
    resp = await client.post("/petugas/api/withdrawals/0/reject", json={})
    assert resp.status_code == 422
    assert [e["field"] for e in resp.json()["errors"]] == ["withdrawal_id", "reason"]
    assert resp.json()["detail"] == (
        "withdrawal id minimal 1 / withdrawal id at least 1; "
        "alasan wajib diisi / reason is required"
    )
    assert fake.asked == []


async def test_a_sale_beyond_the_ledgers_bound_is_refused_at_once_even_offline(
    gateway: Gw,
) -> None:
    svc, fake, client, _ = gateway
    fake.down = True  # offline: a sale is queued, so a bad one must be refused before
    sale = {
        "key": "k-too-big-0001",
        "collector": "ud-galala-plastik",
        "category": "pet",
        "grams": 2_000_000,  # two tonnes
        "price_per_kg_idr": 999_000_000,  # a slip of the thumb: Rp999.000.000 a kg
        "payment_method": "cash",
    }
    resp = await client.post("/petugas/api/stock/sales", json=sale)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"].startswith("total penjualan Rp1.998.000.000.000 melebihi")
    assert svc.db.stock.pending() == 0
    assert svc.db.stock.get("k-too-big-0001") is None

    # at the bound (Rp1.000.000.000.000) it is taken (queued here while offline)
    ok = {**sale, "key": "k-at-the-bound-1", "price_per_kg_idr": 500_000_000}
    resp = await client.post("/petugas/api/stock/sales", json=ok)
    assert resp.status_code == 202, resp.text
    assert svc.db.stock.pending() == 1


# ---- the body limit (wastebank.http_limits, http_max_body_bytes) --------------------------------


class Body:
    """A request body sent in chunks as the app asks for them; counts what it handed out."""

    def __init__(self, total: int, chunk: int = 4096) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            n = min(self.chunk, self.total - self.sent)
            self.sent += n
            yield b"a" * n


@contextlib.asynccontextmanager
async def endpoint(tmp_path: Path, **values: Any) -> AsyncIterator[tuple[AttendantService, Client]]:
    """The gateway's endpoint with ``values`` in its settings, and a client nobody signed in."""
    async with attendant_service(gateway_settings(tmp_path, **values), FakeCentral()) as svc:
        transport = httpx.ASGITransport(app=local_api.http_app(svc.gw, svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield svc, client


Client = httpx.AsyncClient
TOO_LARGE = (
    "isi permintaan terlalu besar, paling banyak 32.768 bita / request body too large: at most "
    "32.768 bytes"
)


@pytest.mark.parametrize("path", ["/petugas/masuk", "/petugas/api/session", "/petugas/api/sync"])
async def test_a_body_declared_over_the_limit_is_refused_unread_before_the_session(
    tmp_path: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with endpoint(tmp_path) as (_, client):
        before = (await client.get("/health")).json()["bad_requests"]
        body = Body(1024 * 1024 * 1024)  # the 1 GB an attacker on the Wi-Fi sends
        with caplog.at_level(logging.WARNING, "wastebank.gateway"):
            resp = await client.post(
                path,
                content=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Content-Length": str(body.total),
                },
            )
        # 413, not 401 (nobody is signed in): the size is judged first, as in the API
        assert resp.status_code == 413, resp.text
        assert resp.json() == {"detail": TOO_LARGE}
        assert resp.headers["connection"] == "close"
        assert body.sent == 0  # not one byte read
        assert f"request body too large: POST {path} from 127.0.0.1" in caplog.text
        health = (await client.get("/health")).json()
        # counted for the operator, with the requests refused in words
        assert (health["bad_requests"], health["too_large_requests"]) == (before + 1, 1)


async def test_a_chunked_body_is_cut_where_it_passes_the_limit(tmp_path: Path) -> None:
    async with endpoint(tmp_path) as (_, client):
        body = Body(5 * 1024 * 1024)  # no Content-Length: counted as it arrives
        resp = await client.post(
            "/petugas/api/session", content=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status_code == 413, resp.text
        assert resp.json() == {"detail": TOO_LARGE}
        # read up to the chunk that crossed the limit, then no more
        assert 32 * 1024 < body.sent <= 32 * 1024 + 4096
        assert (await client.get("/health")).json()["too_large_requests"] == 1


async def test_a_body_at_the_limit_is_read_and_one_byte_more_is_not(tmp_path: Path) -> None:
    async with endpoint(tmp_path, http_max_body_bytes=2048) as (_, client):
        login = {"username": "petugas-bm-01", "password": "kata-sandi"}
        bare = len(json.dumps({**login, "pad": ""}).encode())
        at_limit = json.dumps({**login, "pad": "x" * (2048 - bare)}).encode()
        assert len(at_limit) == 2048
        headers = {"Content-Type": "application/json"}
        resp = await client.post("/petugas/api/session", content=at_limit, headers=headers)
        assert resp.status_code == 200, resp.text  # signed in: the whole body was read
        over = at_limit[:-1] + b" }"
        resp = await client.post("/petugas/api/session", content=over, headers=headers)
        assert resp.status_code == 413
        assert "2.048" in resp.json()["detail"]


def test_the_largest_request_the_page_sends_fits_the_default_with_room(tmp_path: Path) -> None:
    """The measure behind the default: the login form with every field at its longest, in
    4-byte characters percent-encoded (12 bytes each), is the largest body the page can send
    (the JSON writes' longest, a 500-character note, is under 3 KB)."""
    from gateway.http.attendant.pages import LoginForm

    widest = "\U0001f600"
    form = {
        info.alias or name: widest * max_length
        for name, info in LoginForm.model_fields.items()
        for max_length in [next(m.max_length for m in info.metadata if hasattr(m, "max_length"))]
    }
    size = len(urlencode(form))
    assert size == (64 + 256 + 200 + 200) * 12 + len("username=&password=&csrf_token=&next=")
    default = gateway_settings(tmp_path).http_max_body_bytes
    assert size == 8677
    assert size < default / 3, (size, default)
