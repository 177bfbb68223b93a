"""The local endpoint's routing on Starlette alone (gateway.http.routing, gateway.http.fields):
bodies, forms and parameters as msgspec types, bad input located and typed as FastAPI located it
(so gateway.http.validation words it as before), every bad field at once; JSON as FastAPI
serialized a route's return model, the live weight's Server-Sent Events framing and pings."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.http import routing
from gateway.http.routing import (
    Refused,
    Routes,
    event_stream,
    json_response,
    params_of,
    parse_body,
    parse_form,
    path_param,
    query_param,
)
from gateway.http.validation import messages


class Body(msgspec.Struct, kw_only=True):
    amount_idr: Annotated[int, msgspec.Meta(ge=0)]
    name: Annotated[str, msgspec.Meta(min_length=1)]


class Form(msgspec.Struct, kw_only=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    next_page: str = msgspec.field(default="/petugas", name="next")


class Out(msgspec.Struct, kw_only=True):
    at: datetime
    label: str = msgspec.field(name="labelText")
    pair: tuple[str, str]
    note: str | None = None


OUT = Out(at=datetime(2026, 12, 6, 23, 0, tzinfo=UTC), label="é <ok>", pair=("a", "b"))


def _request(
    body: bytes = b"",
    content_type: str | None = "application/json",
    path: str = "/x",
    query: bytes = b"",
    path_params: dict[str, str] | None = None,
) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": query,
        "headers": headers,
        "path_params": path_params or {},
    }
    return Request(scope, receive)


def _refusal(coro: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """The (type, loc) of each error ``coro`` (a parse) is refused with."""
    with pytest.raises(Refused) as caught:
        asyncio.run(coro)
    return [(e["type"], tuple(e["loc"])) for e in caught.value.errors()]


def test_a_json_body_is_read_as_its_model() -> None:
    raw = b'{"amount_idr": 1500, "name": "Siti"}'
    assert asyncio.run(parse_body(_request(raw), Body)) == Body(amount_idr=1500, name="Siti")
    # a JSON media type with parameters, or a +json one, is JSON too
    got = asyncio.run(parse_body(_request(raw, "application/vnd.x+json; charset=utf-8"), Body))
    assert got.amount_idr == 1500


@pytest.mark.parametrize(
    ("raw", "content_type", "errors"),
    [
        (b"", "application/json", [("missing", ("body",))]),
        (b'{"amount_idr": 1', "application/json", [("json_invalid", ("body", 16))]),
        (b"[1]", "application/json", [("model_attributes_type", ("body",))]),
        (b"null", "application/json", [("model_attributes_type", ("body",))]),
        # not declared JSON: not parsed as JSON (FastAPI's strict content type)
        (b'{"amount_idr": 1, "name": "x"}', "text/plain", [("model_attributes_type", ("body",))]),
        (b'{"amount_idr": 1, "name": "x"}', None, [("model_attributes_type", ("body",))]),
        (
            b'{"amount_idr": 1.5, "name": ""}',
            "application/json",
            [("int_from_float", ("body", "amount_idr")), ("string_too_short", ("body", "name"))],
        ),
    ],
)
def test_a_bad_body_is_refused_where_fastapi_located_it(
    raw: bytes, content_type: str | None, errors: list[tuple[str, tuple[Any, ...]]]
) -> None:
    assert _refusal(parse_body(_request(raw, content_type), Body)) == errors


class Kinds(msgspec.Struct, kw_only=True):
    grams: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    ok: bool = False
    on: date | None = None
    method: Literal["cash", "bank_transfer", "ewallet"] = "cash"
    code: Annotated[str, msgspec.Meta(max_length=4, pattern=r"^[a-z]+$")] = "x"


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        # a JSON body's whole number is a JSON integer and its yes/no true or false (review
        # 27: "100.000" was read as 100, true as 1, "yes" as true)
        ({"grams": 12}, {"grams": 12}),
        ({"grams": None}, {"grams": None}),
        ({"ok": True}, {"ok": True}),
        ({"ok": False}, {"ok": False}),
        ({"on": "2026-12-06"}, {"on": date(2026, 12, 6)}),
        ({"on": "2026-12-06T00:00:00Z"}, {"on": date(2026, 12, 6)}),
        ({"on": 86_400}, {"on": date(1970, 1, 2)}),
        ({"unknown": 1, "method": "ewallet"}, {"method": "ewallet"}),  # ignored, as before
    ],
)
def test_fields_are_read_as_fastapi_read_them(sent: dict[str, Any], read: dict[str, Any]) -> None:
    got = asyncio.run(parse_body(_request(json.dumps(sent).encode()), Kinds))
    assert got == Kinds(**read)


@pytest.mark.parametrize(
    ("sent", "error"),
    [
        ({"grams": "1e3"}, ("int_type", None)),
        ({"grams": "12"}, ("int_type", None)),
        ({"grams": "100.000"}, ("int_type", None)),
        ({"grams": 5.0}, ("int_type", None)),
        ({"grams": True}, ("int_type", None)),
        ({"ok": "yes"}, ("bool_type", None)),
        ({"ok": "0"}, ("bool_type", None)),
        ({"ok": 1}, ("bool_type", None)),
        ({"grams": 1.5}, ("int_from_float", None)),
        ({"grams": [1]}, ("int_type", None)),
        ({"grams": 0}, ("greater_than_equal", {"ge": 1})),
        ({"grams": 1001}, ("less_than_equal", {"le": 1000})),
        ({"ok": "maybe"}, ("bool_type", None)),
        ({"ok": 2}, ("bool_type", None)),
        ({"ok": None}, ("bool_type", None)),
        ({"on": "2026-02-30"}, ("date_from_datetime_parsing", None)),
        ({"on": "2026-12-06T12:00:00"}, ("date_from_datetime_inexact", None)),
        ({"on": 12}, ("date_from_datetime_inexact", None)),
        # a Literal's values in their declared order (msgspec's type_info sorts them)
        (
            {"method": "gold"},
            ("literal_error", {"expected": "'cash', 'bank_transfer' or 'ewallet'"}),
        ),
        ({"code": 7}, ("string_type", None)),
        ({"code": "abcde"}, ("string_too_long", {"max_length": 4})),
        ({"code": "AB"}, ("string_pattern_mismatch", {"pattern": "^[a-z]+$"})),
    ],
)
def test_each_refusal_is_typed_from_the_declared_field(
    sent: dict[str, Any], error: tuple[str, dict[str, Any] | None]
) -> None:
    with pytest.raises(Refused) as caught:
        asyncio.run(parse_body(_request(json.dumps(sent).encode()), Kinds))
    (found,) = caught.value.errors()
    assert (found["type"], found.get("ctx")) == error
    assert found["loc"] == ("body", next(iter(sent)))


def test_every_bad_field_is_refused_at_once_in_field_order_and_unknown_ones_if_forbidden() -> None:
    class Strict(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
        amount_idr: Annotated[int, msgspec.Meta(ge=0)]
        name: str

    raw = b'{"zz": 1, "name": 5, "amount_idr": -1}'
    assert _refusal(parse_body(_request(raw), Strict)) == [
        ("greater_than_equal", ("body", "amount_idr")),
        ("string_type", ("body", "name")),
        ("extra_forbidden", ("body", "zz")),
    ]
    assert _refusal(parse_body(_request(b"{}"), Strict)) == [
        ("missing", ("body", "amount_idr")),
        ("missing", ("body", "name")),
    ]


def test_the_refusals_are_worded_for_the_attendant() -> None:
    with pytest.raises(Refused) as caught:
        asyncio.run(parse_body(_request(b'{"amount_idr": -1, "name": "x"}'), Body))
    assert messages(caught.value.errors()) == [
        ("amount_idr", "jumlah minimal 0 / amount at least 0")
    ]
    with pytest.raises(Refused) as caught:
        asyncio.run(parse_body(_request(b"{oops"), Body))
    assert messages(caught.value.errors()) == [
        ("", "isi permintaan bukan JSON yang sah / the request body is not valid JSON")
    ]


def test_a_body_not_utf8_is_a_400_as_fastapi_answered() -> None:
    with pytest.raises(HTTPException) as caught:
        asyncio.run(parse_body(_request(b'{"name": "\x80"}'), Body))
    assert (caught.value.status_code, caught.value.detail) == (
        400,
        "There was an error parsing the body",
    )


def test_a_form_reads_aliases_and_takes_an_empty_field_as_not_sent() -> None:
    kind = "application/x-www-form-urlencoded"
    got = asyncio.run(parse_form(_request(b"username=ani&next=", kind), Form))
    assert got == Form(username="ani", next_page="/petugas")
    got = asyncio.run(parse_form(_request(b"username=ani&next=%2Fpetugas%2Fstok", kind), Form))
    assert got.next_page == "/petugas/stok"
    assert _refusal(parse_form(_request(b"username=&next=x", kind), Form)) == [
        ("missing", ("body", "username"))
    ]


def test_path_and_query_parameters_are_checked_and_located() -> None:
    request = _request(path_params={"withdrawal_id": "12", "member_no": "A 1"}, query=b"date=")
    assert path_param(request, "withdrawal_id", int, ge=1) == 12
    with pytest.raises(Refused) as caught:
        path_param(request, "member_no", pattern=r"^[A-Z0-9-]+$")
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("string_pattern_mismatch", ("path", "member_no"))
    ]
    assert query_param(request, "q", default="") == ""
    # a value given empty is validated as given: "" is not a date
    with pytest.raises(Refused) as caught:
        query_param(request, "date", date | None, default=None)
    assert caught.value.errors()[0]["loc"] == ("query", "date")
    with pytest.raises(Refused) as caught:
        query_param(request, "opening_cash_idr", int)
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [
        ("missing", ("query", "opening_cash_idr"))
    ]


def test_parameters_read_together_are_refused_together_in_order() -> None:
    request = _request(path_params={"withdrawal_id": "0"}, query=b"date=x&opening_cash_idr=5")
    assert params_of(request, lambda r: query_param(r, "opening_cash_idr", int)) == [5]
    with pytest.raises(Refused) as caught:
        params_of(
            request,
            lambda r: path_param(r, "withdrawal_id", int, ge=1),
            lambda r: query_param(r, "opening_cash_idr", int),  # good: not in the refusal
            lambda r: query_param(r, "date", date),
        )
    assert [e["loc"] for e in caught.value.errors()] == [
        ("path", "withdrawal_id"),
        ("query", "date"),
    ]


def test_a_forms_csrf_check_leaves_the_body_readable() -> None:
    # csrf_checked reads a form's token; the handler may read the body after it (reading the
    # form alone would consume the stream: "Stream consumed", a 500).
    from gateway.http.attendant import auth

    class Service:
        def signed_in(self, cookie: str | None) -> object:
            return signed

        def check(self, csrf: str, given: str) -> bool:
            return given == csrf

    class Signed:
        csrf = "t0ken"

    signed: object = Signed()  # a SignedIn stand-in: csrf_checked answers it as it is
    request = _request(b"csrf_token=t0ken&username=ani", "application/x-www-form-urlencoded")
    request.scope["app"] = Starlette()
    request.app.state.attendant = Service()
    request.scope["state"] = {"signed_in": None}
    assert asyncio.run(auth.csrf_checked(request)) is signed
    assert asyncio.run(request.body()) == b"csrf_token=t0ken&username=ani"
    assert asyncio.run(parse_form(request, Form)).username == "ani"


def test_a_struct_is_answered_by_its_encoded_names_in_order_none_as_null() -> None:
    response = json_response(OUT, status=201, headers={"Cache-Control": "no-store"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert bytes(response.body) == (
        '{"at":"2026-12-06T23:00:00Z","labelText":"é <ok>","pair":["a","b"],"note":null}'.encode()
    )
    listed = json_response([OUT, OUT])
    assert json.loads(bytes(listed.body)) == [json.loads(bytes(response.body))] * 2
    assert json.loads(bytes(json_response({"n": 1, "at": date(2026, 12, 6)}).body)) == {
        "n": 1,
        "at": "2026-12-06",
    }


def _app(routes: Routes) -> Starlette:
    return Starlette(routes=routes.routes)


def test_routes_answer_their_methods_head_too_and_return_values_as_json() -> None:
    routes = Routes(prefix="/petugas")

    @routes.get("/api/thing")
    async def thing(request: Request) -> Out:
        return OUT

    @routes.post("/api/thing", status_code=201)
    async def make(request: Request) -> Out:
        return OUT

    @routes.delete("/api/thing", status_code=204)
    async def remove(request: Request) -> Response:
        return Response(status_code=204)

    @routes.put("/api/plain")
    async def plain(request: Request) -> Response:
        return PlainTextResponse("ok", 202)

    assert [(r.path, r.methods) for r in routes.routes] == [
        ("/petugas/api/thing", {"GET", "HEAD"}),
        ("/petugas/api/thing", {"POST"}),
        ("/petugas/api/thing", {"DELETE"}),
        ("/petugas/api/plain", {"PUT"}),
    ]
    assert routes.routes[0].name == "thing"

    async def calls() -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=_app(routes))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            return [
                (r.status_code, r.content)
                for r in [
                    await client.get("/petugas/api/thing"),
                    await client.head("/petugas/api/thing"),
                    await client.post("/petugas/api/thing"),
                    await client.delete("/petugas/api/thing"),
                    await client.put("/petugas/api/plain"),
                ]
            ]

    body = msgspec.json.encode(OUT)
    assert asyncio.run(calls()) == [(200, body), (200, b""), (201, body), (204, b""), (202, b"ok")]
    assert thing.__name__ == "thing"


class Tick(msgspec.Struct, kw_only=True):
    grams: int
    note: str


def _chunks(response: Any) -> AsyncIterator[bytes]:
    body: AsyncIterator[bytes] = response.body_iterator
    return body


def test_the_event_stream_frames_each_model_and_pings_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(routing, "PING_INTERVAL_S", 0.001)

    async def run() -> tuple[list[bytes], bool]:
        go_on = asyncio.Event()
        closed = False

        async def ticks() -> AsyncIterator[Tick]:
            nonlocal closed
            try:
                yield Tick(grams=1250, note="a\nb")
                await go_on.wait()  # idle: the stream pings meanwhile
                yield Tick(grams=1300, note="")
            finally:
                closed = True

        response = event_stream(ticks())
        assert response.media_type == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        chunks: list[bytes] = []
        async for chunk in _chunks(response):
            chunks.append(chunk)
            if chunk == b": ping\n\n":
                go_on.set()
        return chunks, closed

    chunks, closed = asyncio.run(run())
    pings = [c for c in chunks if c == b": ping\n\n"]
    events = [c for c in chunks if c != b": ping\n\n"]
    assert pings, "an idle stream pings"
    assert events == [
        b'data: {"grams":1250,"note":"a\\nb"}\n\n',
        b'data: {"grams":1300,"note":""}\n\n',
    ]
    assert closed, "the items' generator is closed when the stream ends"


def test_a_stream_closed_early_closes_its_generator() -> None:
    async def run() -> bool:
        closed = asyncio.Event()

        async def ticks() -> AsyncIterator[Tick]:
            try:
                yield Tick(grams=1, note="")
                await asyncio.Event().wait()  # never: the stream is closed while waiting
                yield Tick(grams=2, note="")
            finally:
                closed.set()

        body = _chunks(event_stream(ticks()))
        assert await anext(body) == b'data: {"grams":1,"note":""}\n\n'
        waiting = asyncio.ensure_future(anext(body))
        await asyncio.sleep(0)
        waiting.cancel()  # the client went away
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await body.aclose()  # type: ignore[attr-defined]
        await closed.wait()
        return closed.is_set()

    assert asyncio.run(run())


ENDPOINT_PROBE = """
import sys, tempfile
from pathlib import Path
from gateway.app import Gateway
from gateway.http import local_api
from gateway.http.attendant import AttendantService
from tests.gateway_helpers import gateway_settings
gw = Gateway(gateway_settings(Path(tempfile.mkdtemp())))
app = local_api.http_app(gw, AttendantService(gw))
print(type(app).__name__, len(app.routes), "fastapi" in sys.modules)
"""


def test_the_endpoint_is_built_without_loading_fastapi() -> None:
    # import-linter forbids gateway importing fastapi; this catches a library importing it
    out = subprocess.run(
        [sys.executable, "-c", ENDPOINT_PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    assert out[0] == "Starlette"
    assert int(out[1]) > 40, "every route of the endpoint"
    assert out[2] == "False"
