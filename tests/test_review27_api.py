"""Review 27 on the central API's validation (demo Kota Ambon): money and weights arrive as JSON
integers or are refused (never "150.000" read as Rp150); every 422 in words, Bahasa Indonesia
first, naming the field; the member page's amount read as id-ID digits; a transfer paid only
with its reference; a stock movement's time and a close's date within the days a close covers;
the wording of an unknown pengepul and of a refused reopen."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import params
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from api.limits import flat_routes
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, csrf_of, login
from tests.conftest import deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import ledger

BM = "bs-batu-merah"
RIJALI = "bs-rijali"
MEMBER = "AMB-0001"
WIT = ZoneInfo("Asia/Jayapura")
SALE = {"category": "pet", "grams": 1_000, "collector": "ud-galala-plastik", "revenue_idr": 4_500}


@pytest.fixture
async def client(ledger_url: str) -> AsyncIterator[httpx.AsyncClient]:
    add_users(ledger_url)
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            at = datetime.now(UTC) - timedelta(seconds=30)
            apply_deposit(s, deposit_event(1, net_g=100_000, at=at))  # AMB-0001: Rp400.000
            s.commit()
    finally:
        engine.dispose()
    app = create_app(api_settings(ledger_url=ledger_url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("192.0.2.10", 4321))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def _attendant(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client, "petugas-bm-01", PASSWORD)


async def _admin(client: httpx.AsyncClient) -> dict[str, str]:
    return await login(client, "admin", PASSWORD)


def _today() -> str:
    return datetime.now(WIT).date().isoformat()


def _messages(resp: httpx.Response) -> str:
    """The 422's messages: FastAPI's list shape, each message in words."""
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert isinstance(detail, list), detail
    for item in detail:
        assert set(item) >= {"loc", "msg", "type"}, item
        assert " / " in item["msg"], item  # Indonesian first, then English
        assert "Input should" not in item["msg"], item  # not pydantic's English
    return "; ".join(item["msg"] for item in detail)


# ---- 1. money and weights are JSON integers --------------------------------------------------


def _ints(annotation: Any) -> bool:
    """Whether ``annotation`` takes an int (alone or in a union), bool aside."""
    if annotation is int:
        return True
    return any(_ints(arg) for arg in typing.get_args(annotation))


def test_every_integer_of_every_json_body_refuses_strings_floats_and_bools() -> None:
    app = create_app(api_settings(ledger_url="sqlite://"))
    checked = []
    for context in flat_routes(app.routes):  # the routers' routes, not their mounts
        route = getattr(context, "route", context)
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        if isinstance(route.body_field.field_info, params.Form):
            continue  # a page's form: its money is read as id-ID digits (test below)
        model = route.body_field.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        for name, field in model.model_fields.items():
            if not _ints(field.annotation):
                continue
            # the field's own type with its metadata (Strict among them, or not)
            typed: Any = field.annotation
            if field.metadata:
                typed = Annotated[(typed, *field.metadata)]
            adapter: TypeAdapter[Any] = TypeAdapter(typed)
            for lax in ("150.000", "150", True, 150.0):
                with pytest.raises(ValidationError):
                    adapter.validate_python(lax)
            checked.append(f"{model.__name__}.{name}")
    # the review's fields among them
    assert {"CloseIn.counted_cash_idr", "WithdrawalIn.amount_idr", "SaleIn.grams"} <= set(checked)


@pytest.mark.parametrize("amount", ["1.000", "150.000", True, 15_000.0, "15000"])
async def test_a_withdrawal_amount_that_is_not_a_json_integer_is_refused(
    client: httpx.AsyncClient, amount: object
) -> None:
    h = await _attendant(client)
    resp = await client.post(
        f"/api/members/{MEMBER}/withdrawals", json={"amount_idr": amount}, headers=h
    )
    assert "jumlah harus bilangan bulat Rupiah / amount must be whole Rupiah" in _messages(resp)


async def test_a_counted_cash_string_is_refused_not_read_as_rp150(
    client: httpx.AsyncClient,
) -> None:
    h = await _attendant(client)
    url = f"/api/banks/{BM}/days/{_today()}/close"
    resp = await client.post(url, json={"counted_cash_idr": "150.000"}, headers=h)
    assert "uang terhitung harus bilangan bulat Rupiah" in _messages(resp)
    grams = await client.post(f"/api/banks/{BM}/sales", json={**SALE, "grams": "1000"}, headers=h)
    assert "berat harus bilangan bulat gram / weight must be whole grams" in _messages(grams)


# ---- 2. a 422 in words -----------------------------------------------------------------------


async def test_a_422_names_the_field_in_indonesian_then_english(
    client: httpx.AsyncClient,
) -> None:
    h = await _attendant(client)
    w = f"/api/members/{MEMBER}/withdrawals"
    zero = await client.post(w, json={"amount_idr": 0}, headers=h)
    assert _messages(zero) == "jumlah minimal Rp1 / amount must be greater than or equal to Rp1"
    half = await client.post(w, json={"amount_idr": 1.5}, headers=h)
    assert "jumlah harus bilangan bulat Rupiah" in _messages(half)
    asked = await client.post(w, json={"amount_idr": 10_000}, headers=h)
    assert asked.status_code == 201, asked.text
    reject = f"/api/withdrawals/{asked.json()['id']}/reject"
    blank = await client.post(reject, json={"reason": " "}, headers=h)
    assert _messages(blank) == "alasan wajib diisi / reason is required"
    month = await client.post(
        f"/api/banks/{BM}/days/2026-13-09/close", json={"counted_cash_idr": 0}, headers=h
    )
    assert _messages(month).startswith("tanggal harus tanggal yang sah")
    unknown = await client.post(w, json={"amount_idr": 10_000, "amt": 1}, headers=h)
    assert _messages(unknown) == "isian amt tidak dikenal / unknown field amt"
    missing = await client.post(w, json={}, headers=h)
    assert _messages(missing) == "jumlah wajib diisi / amount is required"
    broken = await client.post(
        w, content=b"{nope", headers=h | {"content-type": "application/json"}
    )
    assert "JSON" in _messages(broken)


# ---- 1. the member page's amount in id-ID digits ---------------------------------------------


async def _member_page(client: httpx.AsyncClient) -> str:
    """Signs AMB-0001 in on the pages; their page's CSRF token."""
    page = await client.get("/masuk")
    resp = await client.post(
        "/masuk", data={"username": MEMBER, "password": PIN, "csrf_token": csrf_of(page.text)}
    )
    assert resp.status_code == 303, resp.text
    return csrf_of((await client.get(f"/nasabah/{MEMBER}")).text)


def _amounts(ledger_url: str) -> list[int]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            return list(s.scalars(select(ledger.Withdrawal.amount_idr).order_by("id")))
    finally:
        engine.dispose()


async def test_the_member_page_reads_an_amount_as_id_id_digits(
    client: httpx.AsyncClient, ledger_url: str
) -> None:
    token = await _member_page(client)
    # the browser leaves the amount to the server (no pattern): a pattern stopped "10_000" with
    # the browser's English tooltip, and the words below never reached the member (the re-check)
    amount_input = (await client.get(f"/nasabah/{MEMBER}")).text.split('id="amount_idr"')[1]
    assert "pattern=" not in amount_input.split(">")[0]
    url = f"/nasabah/{MEMBER}/penarikan"
    for typed in ("15.000", "15000", "20.000"):
        ok = await client.post(url, data={"amount_idr": typed, "csrf_token": token})
        assert ok.status_code == 303, (typed, ok.text)
    assert _amounts(ledger_url) == [15_000, 15_000, 20_000]
    fullwidth = "\uff11\uff15\uff10\uff10\uff10"
    for typed in ("10_000", "1e4", "10000,5", "15.00", "1.5000", fullwidth, "", " ", "-15.000"):
        refused = await client.post(url, data={"amount_idr": typed, "csrf_token": token})
        assert refused.status_code == 400, (typed, refused.text)
        assert refused.headers["content-type"].startswith("text/html"), typed
        assert "jumlah harus angka Rupiah" in refused.text, (typed, refused.text)
    bad_method = await client.post(
        url, data={"amount_idr": "15.000", "method": "utang", "csrf_token": token}
    )
    assert bad_method.status_code == 400
    assert bad_method.headers["content-type"].startswith("text/html")
    assert "cara bayar" in bad_method.text


async def test_a_page_form_that_fails_validation_answers_a_page(
    client: httpx.AsyncClient,
) -> None:
    await _member_page(client)
    resp = await client.post(
        f"/nasabah/{MEMBER}/penarikan",
        data={"amount_idr": "15.000", "csrf_token": "x" * 500},
        headers={"accept": "text/html,application/xhtml+xml"},
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    assert "token formulir" in resp.text
    assert "Input should" not in resp.text


# ---- 3. a transfer is paid with its reference ------------------------------------------------


@pytest.mark.parametrize("method", ["bank_transfer", "ewallet"])
async def test_a_transfer_is_not_paid_without_its_reference(
    client: httpx.AsyncClient, method: str
) -> None:
    h, admin = await _attendant(client), await _admin(client)
    asked = await client.post(
        f"/api/members/{MEMBER}/withdrawals",
        json={"amount_idr": 60_000, "method": method, "destination": "1234567890"},
        headers=h,
    )
    assert asked.status_code == 201, asked.text
    wid = asked.json()["id"]
    assert (await client.post(f"/api/withdrawals/{wid}/approve", headers=h)).status_code == 200
    pay = f"/api/withdrawals/{wid}/pay"
    for body in ({}, {"payout_ref": None}, {"payout_ref": "   "}):
        refused = await client.post(pay, json=body, headers=admin)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["detail"] == (
            "nomor referensi transfer wajib diisi / the transfer's reference is required"
        )
    paid = await client.post(pay, json={"payout_ref": "TRF-0001"}, headers=admin)
    assert paid.status_code == 200, paid.text
    assert paid.json()["payout_ref"] == "TRF-0001"


# ---- 4. a stock movement's time within the days a close covers -------------------------------


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00Z", "1900-06-01T00:00:00Z", "1999-12-31T14:00:00Z"]
)
async def test_a_stock_movement_before_the_first_day_is_refused(
    client: httpx.AsyncClient, at: str
) -> None:
    h = await _attendant(client)
    for path, body in (
        (f"/api/banks/{BM}/sales", SALE),
        (f"/api/banks/{BM}/residue", {"category": "pet", "grams": 100}),
        (f"/api/banks/{RIJALI}/transfers", {"category": "pet", "grams": 100}),
    ):
        resp = await client.post(path, json={**body, "at": at}, headers=h)
        assert resp.status_code == 422, (path, at, resp.text)
        assert resp.json()["detail"].startswith(
            "waktu di luar jangkauan (2000-01-01 s.d. 2199-12-31) / time out of range"
        ), resp.text
    # the first day of the range in WIT (1999-12-31T15:00Z) is a day a close covers
    ok = await client.post(
        f"/api/banks/{BM}/sales", json={**SALE, "at": "1999-12-31T15:00:00Z"}, headers=h
    )
    assert ok.status_code == 201, ok.text


# ---- 5. a close's date out of range before "still to come" ----------------------------------


async def test_a_close_of_2300_is_out_of_range_not_still_to_come(
    client: httpx.AsyncClient,
) -> None:
    h = await _attendant(client)
    for day in ("2300-12-09", "2200-01-01", "1999-12-31"):
        resp = await client.post(
            f"/api/banks/{BM}/days/{day}/close", json={"counted_cash_idr": 0}, headers=h
        )
        assert resp.status_code == 422, (day, resp.text)
        assert "tanggal di luar jangkauan" in resp.json()["detail"], resp.text
        assert "belum tiba" not in resp.json()["detail"]


# ---- 6. words ---------------------------------------------------------------------------------


async def test_an_unknown_pengepul_is_named_in_both_languages(client: httpx.AsyncClient) -> None:
    h = await _attendant(client)
    resp = await client.post(
        f"/api/banks/{BM}/sales", json={**SALE, "collector": "nope"}, headers=h
    )
    assert resp.status_code == 404, resp.text
    indonesian, english = resp.json()["detail"].split(" / ", 1)
    assert "pengepul" in indonesian
    assert "nope" in indonesian
    assert "nope" in english


async def test_a_refused_reopen_speaks_of_reopening(client: httpx.AsyncClient) -> None:
    admin = await _admin(client)
    resp = await client.post(
        f"/api/banks/{BM}/days/{_today()}/reopen", json={"reason": "salah hitung"}, headers=admin
    )
    assert resp.status_code == 409, resp.text
    detail = resp.json()["detail"]
    assert "tidak dapat ditutup" not in detail
    assert "cannot be closed" not in detail
    assert detail.startswith("hari tidak dapat dibuka kembali / the day cannot be reopened")


@pytest.mark.parametrize("phone", ["+15551234567", "0211234567", "6221555123", "08001234567"])
async def test_sms_is_switched_on_for_an_indonesian_mobile_number_only(
    client: httpx.AsyncClient, phone: str
) -> None:
    """The SMS review: a landline or a foreign number took SMS receipts (with balances)."""
    petugas = await _attendant(client)
    url = "/api/members/AMB-0001"
    assert (await client.patch(url, json={"phone": phone}, headers=petugas)).status_code == 200
    refused = await client.patch(url, json={"sms_opt_in": True}, headers=petugas)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("SMS perlu nomor HP yang valid")
    assert (await client.patch(url, json={"phone": "081234567890"}, headers=petugas)).is_success
    on = await client.patch(url, json={"sms_opt_in": True}, headers=petugas)
    assert on.status_code == 200, on.text
    moved = await client.patch(url, json={"phone": phone}, headers=petugas)  # on, then a landline
    assert moved.status_code == 422, moved.text


@pytest.mark.parametrize("sent", ["yes", "on", 1, 1.0, "0", 0])
async def test_sms_opt_in_is_true_or_false_only(client: httpx.AsyncClient, sent: Any) -> None:
    """The SMS review: "yes", "on", 1 switched SMS on; "no", 0 off."""
    petugas = await _attendant(client)
    resp = await client.patch("/api/members/AMB-0001", json={"sms_opt_in": sent}, headers=petugas)
    assert resp.status_code == 422, resp.text
    assert (
        _messages(resp) == "SMS harus ya atau tidak (true/false) / SMS opt-in must be true or false"
    )


async def test_a_list_of_values_says_atau_in_the_indonesian_half(
    client: httpx.AsyncClient,
) -> None:
    """The re-check of the fifth review: "cara bayar harus salah satu dari 'cash',
    'bank_transfer' or 'ewallet'" had the English "or" in the Indonesian half."""
    resp = await client.post(
        "/api/members/AMB-0001/withdrawals",
        json={"amount_idr": 10_000, "method": "cheque"},
        headers=await _attendant(client),
    )
    said = _messages(resp)
    assert " dari 'cash', 'bank_transfer' atau 'ewallet' / " in said, said
    assert said.endswith(" must be one of 'cash', 'bank_transfer' or 'ewallet'"), said


async def test_the_admin_price_page_refuses_a_price_beyond_its_bound_as_a_bad_form(
    client: httpx.AsyncClient,
) -> None:
    """The re-check: the page answered 409 (a conflict) for a price beyond its bound, which
    `PUT /api/banks/{bank}/prices/{category}` answers 422: the page answers its form again with
    the reason, 400, as for every bad field of a page's form (docs/operations.md, Money rules)."""
    from tests.auth_helpers import with_csrf

    form = await with_csrf(client, {"username": "admin", "password": PASSWORD})
    assert (await client.post("/masuk", data=form)).status_code == 303
    form = await with_csrf(client, {"category_code": "kaleng", "price_idr": "1.000.000"})
    page = await client.post("/admin/harga/bs-batu-merah", data=form)
    assert page.status_code == 400, page.text[-1500:]
    assert "di luar batas wajar" in page.text
