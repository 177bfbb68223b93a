"""The attendant pages' routes as an attacker or a careless hand would use them (issue 15's
review): a PIN slip opens only for the attendant who issued it and is kept by no cache; a
receipt reference or member number that is not one is refused in words, never a 500 nor
another route of the central API; a sale whose total the ledger cannot take is refused at
once, not queued to fail later. And the endpoint under an attacker on the bank's Wi-Fi: bodies
over http_max_body_bytes refused unread before the session, unknown paths and methods, HEAD,
live views by the hundred, static names, bytes that are not UTF-8, a lying Content-Type, error
pages that echo, a request head of megabytes, another bank's attendant.

The gateway's app is the real one over httpx's ASGI transport; the central API is faked at the
transport seam (tests/gateway_helpers.py), recording what it was asked."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
import msgspec.inspect
import pytest
import uvicorn
from starlette.exceptions import HTTPException

from gateway.http import local_api
from gateway.http.attendant import AttendantService, views
from tests.conftest import eventually, held_requests
from tests.gateway_helpers import (
    PASSWORD,
    FakeCentral,
    armed,
    attendant_service,
    gateway_settings,
)
from wastebank.http_limits import BUSY


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
    bad_json: dict[str, Any] = {"content": b"{", "headers": {"content-type": "application/json"}}
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


async def test_a_field_a_write_does_not_take_is_refused_not_ignored(gateway: Gw) -> None:
    """A weight or a price sent with an arm is not the scale's: named and refused (as the
    central API refuses fields it does not know), never silently dropped."""
    svc, _, client, _ = gateway
    resp = await client.post(
        "/petugas/api/scales/scale-01/record",
        json={"member_no": "AMB-0001", "category_code": "pet", "net_g": 5000},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"] == [
        {"field": "net_g", "message": "isian berat tidak dikenal / unknown field weight"}
    ]
    assert armed(svc) is None  # nothing armed


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
        bare = json.dumps(login).encode()  # padded with JSON's whitespace (no unknown field)
        at_limit = bare[:-1] + b" " * (2048 - len(bare)) + b"}"
        assert len(at_limit) == 2048
        headers = {"Content-Type": "application/json"}
        resp = await client.post("/petugas/api/session", content=at_limit, headers=headers)
        assert resp.status_code == 200, resp.text  # signed in: the whole body was read
        over = at_limit[:-1] + b" }"
        resp = await client.post("/petugas/api/session", content=over, headers=headers)
        assert resp.status_code == 413
        assert "2.048" in resp.json()["detail"]


async def test_a_request_beyond_the_gateways_capacity_is_503_and_health_still_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with endpoint(tmp_path, http_max_requests=32, http_max_requests_per_client=32) as (
        _,
        client,
    ):
        page = (await client.get("/petugas/masuk")).status_code
        bad = (await client.get("/health")).json()["bad_requests"]
        held, release = await held_requests(client, "/petugas/api/session", 32, json_body=True)
        with caplog.at_level(logging.WARNING, "wastebank.gateway"):
            for _ in range(3):
                resp = await client.get("/petugas/masuk")
                assert resp.status_code == 503, resp.text
                assert resp.json() == {"detail": BUSY}
                assert (resp.headers["retry-after"], resp.headers["connection"]) == ("5", "close")
        # logged once for the three, with the count and the last one's path
        busy_lines = [r for r in caplog.records if "sibuk / busy" in r.getMessage()]
        assert len(busy_lines) == 1
        assert busy_lines[0].getMessage() == (
            "sibuk / busy: 1 ditolak / refused (503), 32 in progress of at most 32 (32 per "
            "client); the last: GET /petugas/masuk from 127.0.0.1 with 32 in progress"
        )
        health = (await client.get("/health")).json()  # exempt: the operator still sees it
        assert health["busy_refused"] == 3
        assert health["bad_requests"] == bad  # busy is not bad input
        release.set()
        answers = await asyncio.gather(*held)
        assert {r.status_code for r in answers} == {422}  # "{}" is no login: read to the end
        assert (await client.get("/petugas/masuk")).status_code == page  # the slots came back


async def test_one_client_cannot_take_every_place_and_a_body_that_never_comes_is_408(
    tmp_path: Path,
) -> None:
    """A phone on the Wi-Fi opening requests whose bodies never come (the second review's
    attack): it holds at most its own share, each until the body timeout, then a 408."""
    async with endpoint(
        tmp_path, http_max_requests=32, http_max_requests_per_client=8, http_read_timeout_s=1
    ) as (svc, client):
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=client._transport.app,  # type: ignore[attr-defined]
                client=("192.168.1.24", 40000),
            ),
            base_url="http://gw.test",
        )
        bad = (await client.get("/health")).json()["bad_requests"]
        # their bodies never come
        held, _ = await held_requests(client, "/petugas/api/session", 8, json_body=True)
        # this client's share is taken; another's is not
        assert (await client.get("/petugas/masuk")).status_code == 503
        async with other:
            assert (await other.get("/petugas/masuk")).status_code != 503
        # each held body ends at the timeout: 408 in words, the connection closed
        answers = await asyncio.gather(*held)
        assert {r.status_code for r in answers} == {408}
        assert answers[0].json() == {
            "detail": "isi permintaan tidak utuh dalam 1 detik / request body not complete "
            "within 1 s"
        }
        assert answers[0].headers["connection"] == "close"
        health = (await client.get("/health")).json()
        assert health["too_slow_requests"] == 8
        assert health["bad_requests"] == bad + 8
        assert (await client.get("/petugas/masuk")).status_code != 503  # the places came back


def test_the_largest_request_the_page_sends_fits_the_default_with_room(tmp_path: Path) -> None:
    """The measure behind the default: the login form with every field at its longest, in
    4-byte characters percent-encoded (12 bytes each), is the largest body the page can send
    (the JSON writes' longest, a 500-character note, about 3 KB)."""
    from gateway.http.attendant.pages import LoginForm

    def longest(t: msgspec.inspect.Type) -> int:
        """A text field's max_length (in ``str | None``, its text's)."""
        if isinstance(t, msgspec.inspect.UnionType):
            return next(longest(m) for m in t.types if isinstance(m, msgspec.inspect.StrType))
        assert isinstance(t, msgspec.inspect.StrType)
        assert t.max_length is not None
        return t.max_length

    widest = "\U0001f600"
    info = msgspec.inspect.type_info(LoginForm)
    assert isinstance(info, msgspec.inspect.StructType)
    form = {f.encode_name: widest * longest(f.type) for f in info.fields}
    size = len(urlencode(form))
    assert size == (64 + 256 + 200 + 200) * 12 + len("username=&password=&csrf_token=&next=")
    default = gateway_settings(tmp_path).http_max_body_bytes
    assert size == 8677
    assert size < default / 3, (size, default)


# ---- an attacker on the Wi-Fi: methods, paths, headers, queries, streams ------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-route"),
        ("GET", "/petugas/api/no-such-route"),
        ("OPTIONS", "/petugas"),
        ("OPTIONS", "/health"),
        ("TRACE", "/health"),
        ("PUT", "/health"),
        ("HEAD", "/health/full"),
        ("HEAD", "/petugas/api/scales/scale-01/live"),
        ("POST", "/petugas"),
    ],
)
async def test_without_a_session_anything_but_the_public_routes_is_401(
    tmp_path: Path, method: str, path: str
) -> None:
    """Unknown paths and methods too: no route map (404 against 401) for a stranger."""
    async with endpoint(tmp_path) as (_, client):
        resp = await client.request(method, path)
        assert resp.status_code == 401, resp.text
        if method != "HEAD":
            assert resp.json() == {"detail": "belum masuk / not signed in"}


async def test_a_wrong_method_is_405_naming_the_paths_methods(gateway: Gw) -> None:
    _, _, client, _ = gateway
    for method, path, allow in [
        ("OPTIONS", "/petugas/api/state", "GET, HEAD"),
        ("DELETE", "/health", "GET, HEAD"),
        ("PATCH", "/petugas/api/members", "GET, HEAD"),
        ("GET", "/petugas/api/sync", "POST"),
        ("HEAD", "/petugas/api/sync", "POST"),
    ]:
        resp = await client.request(method, path)
        assert resp.status_code == 405, (method, path, resp.text)
        assert resp.headers["allow"] == allow


async def test_head_answers_the_headers_of_get_and_opens_no_live_stream(gateway: Gw) -> None:
    svc, _, client, _ = gateway
    get = await client.get("/petugas/api/state")
    head = await client.head("/petugas/api/state")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"]
    # the live view while the gateway runs: its headers, at once, and no stream held open
    live = await client.head("/petugas/api/scales/scale-01/live")
    assert (live.status_code, live.content) == (200, b"")
    assert live.headers["content-type"].startswith("text/event-stream")
    assert svc.streams == 0


async def test_live_views_are_capped_per_session_and_in_all(gateway: Gw) -> None:
    svc, _, client, other = gateway
    reader = svc.gw.readers["scale-01"]
    session = {"wb_petugas": client.cookies["wb_petugas"]}
    sid = svc.signed_in(session["wb_petugas"])
    assert sid is not None
    held = [views.live(svc, reader, sid=sid.sid) for _ in range(views.LIVE_PER_SESSION)]
    for stream in held:
        await anext(stream)
    assert svc.streams == views.LIVE_PER_SESSION
    # one more from the same session: refused in words, with when to try again
    resp = await client.get("/petugas/api/scales/scale-01/live")
    assert resp.status_code == 429, resp.text
    assert resp.json()["detail"] == views.TOO_MANY_LIVE
    assert resp.headers["retry-after"] == "10"
    assert svc.streams == views.LIVE_PER_SESSION  # the refused one took no slot
    # the gateway's bound: other sessions fill it, then nobody gets one more
    others = [
        views.live(svc, reader, sid=f"s{i}") for i in range(views.LIVE_MAX - views.LIVE_PER_SESSION)
    ]
    for stream in others:
        await anext(stream)
    with pytest.raises(HTTPException) as refused:
        await anext(views.live(svc, reader, sid="another"))
    assert refused.value.status_code == 429
    # a stream that ends gives its slot back
    for stream in [*held, *others]:
        assert isinstance(stream, AsyncGenerator)  # views.live is an async generator
        await stream.aclose()
    assert (svc.streams, dict(svc.live_by_session)) == (0, {})
    await anext(views.live(svc, reader, sid=sid.sid))


@pytest.mark.parametrize(
    "name",
    [
        "%2e%2e%2fsettings.py",
        "..%2f..%2fpyproject.toml",
        "%2e%2e/%2e%2e/settings.py",
        "..%5csettings.py",
        "attendant.js%00.css",
        ".attendant.js",
        "attendant.js%2f",
        "petugas.css%3F",
        "%252e%252e%252fsettings.py",
    ],
)
async def test_the_static_files_serve_their_names_only(tmp_path: Path, name: str) -> None:
    async with endpoint(tmp_path) as (_, client):
        resp = await client.get(httpx.URL(f"http://gw.test/petugas/static/{name}"))
        # 307: "attendant.js/" to the script itself (Starlette's trailing slash)
        assert resp.status_code in (307, 401, 404), resp.text[:200]
        location = resp.headers.get("location")
        assert location is None or location.endswith("/petugas/static/attendant.js")
        assert "GatewaySettings" not in resp.text
        assert "[project]" not in resp.text


async def test_headers_and_queries_of_any_bytes_are_refused_in_words(gateway: Gw) -> None:
    """Bytes that are not UTF-8 in a cookie, a token or a query; a query of 10 KB or 1,500
    parameters (within the 16 KiB head: more is 431, tests/test_review20_login.py): 401, 403 or
    422, never a 500."""
    _, _, client, _ = gateway
    anon = httpx.AsyncClient(transport=client._transport, base_url="http://gw.test")
    async with anon:
        resp = await anon.get("/petugas/api/state", headers={b"cookie": b"wb_petugas=\xff\xfe"})
        assert resp.status_code == 401
    resp = await client.post(
        "/petugas/api/scales/scale-01/cancel", headers={b"X-CSRF-Token": b"\xff\xfe\xe9"}
    )
    assert resp.status_code == 403
    resp = await client.get("/petugas/api/members?q=%ff%fe")
    assert resp.status_code in (200, 422)
    resp = await client.get("/petugas/api/members", params={"q": "a" * 10_000})
    assert resp.status_code == 422  # refused, never cut to fit
    assert "q" in resp.text
    many = "&".join(f"q{i}=1" for i in range(1500))
    resp = await client.get(f"/petugas/api/day?{many}&date=%00")
    assert resp.status_code == 422
    assert resp.json()["detail"] == "tanggal tidak sah / date is not valid"


async def test_a_search_or_card_longer_than_any_is_refused_not_cut(gateway: Gw) -> None:
    _, _, client, _ = gateway
    resp = await client.get("/petugas/api/members", params={"q": "AMB-0001" + " " * 56})
    assert resp.status_code == 200  # 64 characters: searched
    resp = await client.get("/petugas/api/members", params={"q": "AMB-0001" + " " * 57})
    assert resp.status_code == 422, resp.text
    card = "04A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5"
    assert (await client.get(f"/petugas/api/cards/{card}")).status_code == 404  # 32: looked up
    resp = await client.get(f"/petugas/api/cards/{card}0")
    assert resp.status_code == 422, resp.text


async def test_a_content_type_that_lies_is_refused(gateway: Gw) -> None:
    svc, _, client, _ = gateway
    token = client.headers.pop("X-CSRF-Token")
    record = "/petugas/api/scales/scale-01/record"
    arm = b'{"member_no":"AMB-0001","category_code":"pet"}'
    # JSON called a form: no token in it (403); a form with the token, to a JSON write: 422
    resp = await client.post(
        record, content=arm, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert resp.status_code == 403
    resp = await client.post(
        record,
        content=f"csrf_token={token}&member_no=AMB-0001&category_code=pet".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 422
    assert (
        resp.json()["detail"] == "isi permintaan harus objek JSON / the body must be a JSON object"
    )
    # a multipart form without its boundary, or not multipart at all: 400 in words
    for kind, body in [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"not multipart"),
    ]:
        resp = await client.post(record, content=body, headers={"content-type": kind})
        assert resp.status_code == 400, resp.text
        assert "multipart" in resp.json()["detail"]
    # JSON called text/plain (what a cross-site form can send): not read as JSON, no login
    resp = await client.post(
        "/petugas/api/session",
        content=json.dumps({"username": "petugas-bm-01", "password": PASSWORD}).encode(),
        headers={"content-type": "text/plain", "X-CSRF-Token": token},
    )
    assert resp.status_code == 422
    assert "set-cookie" not in resp.headers


@pytest.mark.parametrize(
    "path",
    [
        "/petugas/struk/setoran/<img src=x onerror=alert(1)>",
        "/petugas/struk/<script>alert(1)</script>/1",
        "/petugas/hari-ini?date=<script>alert(1)</script>",
        "/petugas?next=<script>alert(1)</script>",
    ],
)
async def test_error_pages_escape_what_they_echo(gateway: Gw, path: str) -> None:
    _, _, client, _ = gateway
    resp = await client.get(path, headers={"accept": "text/html"})
    assert resp.status_code < 500
    assert "<script>alert" not in resp.text
    assert "<img src=x" not in resp.text


async def test_the_server_closes_a_request_head_over_its_bound(tmp_path: Path) -> None:
    """uvicorn serves the endpoint with h11, whose head is bounded (local_api.HEAD_MAX_BYTES):
    a 4 MB URL is refused and its connection closed, and the gateway answers the next one
    (httptools, uvicorn's default, kept reading it into memory)."""
    async with attendant_service(gateway_settings(tmp_path, http_port=0), FakeCentral()) as svc:
        config = local_api.server_config(svc.gw, local_api.http_app(svc.gw, svc))
        assert config.h11_max_incomplete_event_size == 16 * 1024
        config.host = "127.0.0.1"
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            await eventually(lambda: _started(server))
            port = server.servers[0].sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health?q=")
            answer = b""
            with contextlib.suppress(ConnectionError):
                for _ in range(64):  # 4 MB in 64 KB pieces, until the server stops reading
                    writer.write(b"a" * 65536)
                    await writer.drain()
                answer = await reader.read(200)
            writer.close()
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                assert (await client.get("/health")).status_code == 200
        finally:
            server.should_exit = True
            await task


async def test_a_head_sent_a_byte_at_a_time_and_connections_beyond_the_bound_are_closed(
    tmp_path: Path,
) -> None:
    """The third review's attack: connections whose request head never ends were kept, each
    with its memory, until the Pi ran out of file descriptors. A head not whole within
    http_read_timeout_s closes its connection; one connection beyond a client's share is closed
    as it opens; both counted in /health."""
    settings = gateway_settings(
        tmp_path,
        http_port=0,
        http_read_timeout_s=1,
        http_max_connections=32,
        http_max_requests_per_client=8,
    )
    async with attendant_service(settings, FakeCentral()) as svc:
        config = local_api.server_config(svc.gw, local_api.http_app(svc.gw, svc))
        config.host = "127.0.0.1"
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        before = sum(local_api.CLOSED.values())
        try:
            await eventually(lambda: _started(server))
            port = server.servers[0].sockets[0].getsockname()[1]
            held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
            for _, writer in held:
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: a")
                await writer.drain()
            # the ninth from this address: closed as it opens
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(100), 5) == b""
            writer.close()
            # each unfinished head: closed at its deadline, unanswered
            for reader, writer in held:
                assert await asyncio.wait_for(reader.read(100), 10) == b""
                writer.close()
            assert sum(local_api.CLOSED.values()) - before == 9
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = (await client.get("/health")).json()
            assert health["connections_closed"] >= 9
        finally:
            server.should_exit = True
            await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def test_another_banks_attendant_gets_no_session_here(tmp_path: Path) -> None:
    """Another bank's attendant is refused at the login, and a session of another gateway
    (the same bank's: another key) is no session here."""
    async with endpoint(tmp_path / "here") as (_, client):
        resp = await client.post(
            "/petugas/api/session", json={"username": "petugas-nsw-01", "password": PASSWORD}
        )
        assert resp.status_code == 403, resp.text
        assert "wb_petugas" not in client.cookies
        async with endpoint(tmp_path / "there") as (_, elsewhere):
            await sign_in(elsewhere, "petugas-bm-01")
            cookie = elsewhere.cookies["wb_petugas"]
        client.cookies.set("wb_petugas", cookie)
        resp = await client.get("/petugas/api/state")
        assert resp.status_code == 401
