"""The gateway's findings of the outside review of 2026-12 (review 27), on its attendant endpoint:

1. A JSON body's whole number (money, weights) is a JSON integer only: ``"100.000"`` was read
   as Rp100, ``true`` as Rp1/kg. A string, a bool or a float is 422 naming the field; text read
   from a query, a path or a form takes digits only ("100.000" there is refused, never 100).
2. A stock movement's key reused with another content is refused (409), not answered with the
   first movement while the second is recorded nowhere; the same content again is the first
   answer (sales, transfers and residue alike, offline too).
3. The words: a bound in id-ID digits, "atau" in the Indonesian half of a list, and each
   language's sentence whole ("persetujuan tercatat / approval recorded").
5. A movement's time is the gateway's: a client's ``at`` is an unknown field (422).

The gateway's app is the real one over httpx's ASGI transport; the central API is the fake at
the transport seam (tests/gateway_helpers.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest

from gateway.http.attendant import AttendantService
from gateway.http.fields import Form, read
from gateway.http.validation import message
from tests.gateway_helpers import PASSWORD, FakeCentral, attendant_service, gateway_settings

Gw = tuple[AttendantService, FakeCentral, httpx.AsyncClient, dict[str, str]]
SALE = {
    "key": "r27-sale-0001",
    "collector": "ud-galala-plastik",
    "category": "pet",
    "grams": 500,
    "price_per_kg_idr": 4_500,
}
TRANSFER = {"key": "r27-transfer-0001", "category": "pet", "grams": 500}
RESIDUE = {"key": "r27-residue-0001", "category": "pet", "grams": 500, "kind": "residue"}
PATHS = {"sale": "sales", "transfer": "transfers", "residue": "residue"}
BODIES = {"sale": SALE, "transfer": TRANSFER, "residue": RESIDUE}


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gw]:
    from gateway.http import local_api

    fake = FakeCentral()
    async with attendant_service(gateway_settings(tmp_path), fake) as svc:
        app = local_api.http_app(svc.gw, svc)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
        ) as client:
            resp = await client.post(
                "/petugas/api/session", json={"username": "petugas-bm-01", "password": PASSWORD}
            )
            assert resp.status_code == 200, resp.text
            yield svc, fake, client, {"X-CSRF-Token": resp.json()["csrf_token"]}


# ---- 1. money and weights: a JSON integer only -------------------------------------------------

NOT_WHOLE: list[Any] = ["100.000", "100000", " 12 ", True, False, 100_000.0, 1.5, "1e5"]


@pytest.mark.parametrize("sent", NOT_WHOLE)
async def test_a_day_close_takes_json_integers_only(gateway: Gw, sent: Any) -> None:
    _, fake, client, csrf = gateway
    closes: list[str] = []
    real = fake.stock_and_day

    def watched(request: httpx.Request, path: str) -> httpx.Response | None:
        if request.method == "POST" and path.endswith("/close"):
            closes.append(request.content.decode())
        return real(request, path)

    fake.stock_and_day = watched  # type: ignore[method-assign]
    body = {"date": "2026-12-06", "counted_cash_idr": sent, "opening_cash_idr": sent}
    resp = await client.post("/petugas/api/day/close", json=body, headers=csrf)
    assert resp.status_code == 422, (sent, resp.text)
    assert resp.json()["errors"] == [
        {
            "field": "counted_cash_idr",
            "message": "uang tunai dihitung harus bilangan bulat Rupiah / cash counted must be "
            "whole Rupiah",
        },
        {
            "field": "opening_cash_idr",
            "message": "saldo awal harus bilangan bulat Rupiah / opening cash must be whole Rupiah",
        },
    ]
    assert closes == []  # nothing reached the central API
    ok = {"date": "2026-12-06", "counted_cash_idr": 100_000, "opening_cash_idr": 100_000}
    assert (await client.post("/petugas/api/day/close", json=ok, headers=csrf)).status_code == 201
    assert [msgspec.json.decode(c)["counted_cash_idr"] for c in closes] == [100_000]


@pytest.mark.parametrize("sent", NOT_WHOLE)
@pytest.mark.parametrize(
    ("kind", "field", "words"),
    [
        ("sale", "price_per_kg_idr", "harga per kg harus bilangan bulat Rupiah / price per kg"),
        ("sale", "grams", "berat harus bilangan bulat gram / weight must be whole grams"),
        ("transfer", "received_g", "berat diterima harus bilangan bulat gram / weight received"),
        ("residue", "grams", "berat harus bilangan bulat gram / weight must be whole grams"),
    ],
)
async def test_a_movement_takes_json_integers_only(
    gateway: Gw, sent: Any, kind: str, field: str, words: str
) -> None:
    svc, fake, client, csrf = gateway
    body = {**BODIES[kind], field: sent}
    resp = await client.post(f"/petugas/api/stock/{PATHS[kind]}", json=body, headers=csrf)
    assert resp.status_code == 422, (sent, resp.text)
    (error,) = resp.json()["errors"]
    assert error["field"] == field
    assert error["message"].startswith(words), error
    assert fake.stock_moves == []
    assert svc.db.stock.get(str(body["key"])) is None  # nothing kept to send later either


async def test_the_reviewers_sale_at_true_per_kg_is_refused(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    body = {**SALE, "price_per_kg_idr": True}
    resp = await client.post("/petugas/api/stock/sales", json=body, headers=csrf)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == (
        "harga per kg harus bilangan bulat Rupiah / price per kg must be whole Rupiah"
    )
    assert fake.stock_moves == []


async def test_a_query_takes_digits_never_a_dotted_number(gateway: Gw) -> None:
    _, _, client, _ = gateway
    resp = await client.get("/petugas/api/day", params={"opening_cash_idr": "100.000"})
    assert resp.status_code == 422, resp.text  # never Rp100
    assert resp.json()["errors"] == [
        {
            "field": "opening_cash_idr",
            "message": "saldo awal harus bilangan bulat Rupiah / opening cash must be whole Rupiah",
        }
    ]
    ok = await client.get("/petugas/api/day", params={"opening_cash_idr": "100000"})
    assert ok.status_code == 200, ok.text


class AmountForm(Form, kw_only=True):
    amount_idr: Annotated[int, msgspec.Meta(ge=0)]


class AmountBody(msgspec.Struct, kw_only=True):
    amount_idr: Annotated[int, msgspec.Meta(ge=0)]


@pytest.mark.parametrize(
    ("kind", "sent", "got"),
    [
        # a form's field is text: its digits are the number; a dot is refused, never a fraction
        (AmountForm, "100000", 100_000),
        (AmountForm, " 100000 ", 100_000),
        (AmountForm, "100.000", None),
        (AmountForm, "5.00", None),
        (AmountForm, "1e5", None),
        # a JSON body's field is a JSON integer
        (AmountBody, 100_000, 100_000),
        (AmountBody, "100000", None),
        (AmountBody, True, None),
        (AmountBody, 100_000.0, None),
    ],
)
def test_forms_read_digits_and_bodies_json_integers(kind: Any, sent: Any, got: int | None) -> None:
    value, errors = read(kind, {"amount_idr": sent}, ("body",))
    if got is None:
        assert value is None
        (error,) = errors
        assert message(error) == "jumlah harus bilangan bulat Rupiah / amount must be whole Rupiah"
    else:
        assert errors == []
        assert value.amount_idr == got


# ---- 2. a key reused with another content -----------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("sale", {"grams": 600}),
        ("sale", {"price_per_kg_idr": 4_501}),
        ("sale", {"payment_method": "ewallet"}),
        ("transfer", {"grams": 600}),
        ("transfer", {"received_g": 450}),
        ("residue", {"grams": 600}),
        ("residue", {"kind": "burned"}),
    ],
)
async def test_a_key_reused_with_another_content_is_refused(
    gateway: Gw, kind: str, change: dict[str, Any]
) -> None:
    svc, fake, client, csrf = gateway
    url = f"/petugas/api/stock/{PATHS[kind]}"
    first = await client.post(url, json=BODIES[kind], headers=csrf)
    assert first.status_code == 201, first.text
    other = await client.post(url, json={**BODIES[kind], **change}, headers=csrf)
    assert other.status_code == 409, other.text
    assert other.json()["detail"] == (
        "kunci ini sudah dipakai untuk isi lain; catat lagi dengan kunci baru / this key was "
        "used for another content: record it again with a new key"
    )
    again = await client.post(url, json=BODIES[kind], headers=csrf)
    assert (again.status_code, again.json()) == (201, first.json())  # the first answer
    assert len(fake.stock_moves) == 1  # only the first, once
    kept = svc.db.stock.get(str(BODIES[kind]["key"]))
    assert kept is not None
    assert kept.body["api"]["grams"] == 500


async def test_a_key_of_a_sale_reused_for_a_transfer_is_refused(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    assert (await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)).is_success
    body = {"key": SALE["key"], "category": "pet", "grams": 500}
    resp = await client.post("/petugas/api/stock/transfers", json=body, headers=csrf)
    assert resp.status_code == 409, resp.text
    assert [path for path, _ in fake.stock_moves] == ["sales"]


async def test_a_queued_key_reused_with_another_content_is_refused(gateway: Gw) -> None:
    svc, fake, client, csrf = gateway
    fake.down = True
    first = await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)
    assert first.status_code == 202, first.text
    other = await client.post("/petugas/api/stock/sales", json={**SALE, "grams": 600}, headers=csrf)
    assert other.status_code == 409, other.text
    again = await client.post("/petugas/api/stock/sales", json=SALE, headers=csrf)
    assert again.status_code == 202, again.text
    assert svc.db.stock.pending() == 1


# ---- 3. the words --------------------------------------------------------------------------


async def test_a_bound_is_in_id_id_digits(gateway: Gw) -> None:
    _, _, client, csrf = gateway
    body = {**SALE, "price_per_kg_idr": 10**12 + 1}
    resp = await client.post("/petugas/api/stock/sales", json=body, headers=csrf)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == (
        "harga per kg maksimal 1.000.000.000.000 / price per kg at most 1.000.000.000.000"
    )


async def test_a_list_of_values_says_atau_in_indonesian(gateway: Gw) -> None:
    _, _, client, csrf = gateway
    body = {**RESIDUE, "kind": "buried"}
    resp = await client.post("/petugas/api/stock/residue", json=body, headers=csrf)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == (
        "jenis harus salah satu dari 'residue' atau 'burned' / kind must be one of 'residue' or "
        "'burned'"
    )
    body = {**SALE, "payment_method": "utang"}
    resp = await client.post("/petugas/api/stock/sales", json=body, headers=csrf)
    assert resp.json()["detail"] == (
        "cara bayar harus salah satu dari 'cash', 'bank_transfer' atau 'ewallet' / payment "
        "method must be one of 'cash', 'bank_transfer' or 'ewallet'"
    )


async def test_a_withdrawal_notice_is_one_sentence_per_language(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    fake.withdrawal_rows[3] = {**fake.withdrawal_rows[1], "id": 3}
    assert (await client.get("/petugas/api/withdrawals")).status_code == 200
    done = {}
    for wid, action, body in (
        (1, "approve", {}),
        (2, "pay", {"payout_ref": "TRF-1"}),
        (3, "reject", {"reason": "salah jumlah"}),
    ):
        resp = await client.post(
            f"/petugas/api/withdrawals/{wid}/{action}", json=body, headers=csrf
        )
        assert resp.status_code == 200, resp.text
        done[action] = resp.json()["message"]
    assert done == {
        "approve": "persetujuan tercatat / approval recorded",
        "pay": "pembayaran tercatat / payment recorded",
        "reject": "penolakan tercatat / refusal recorded",
    }


async def test_a_queued_withdrawal_notice_is_one_sentence_per_language(gateway: Gw) -> None:
    _, fake, client, csrf = gateway
    assert (await client.get("/petugas/api/withdrawals")).status_code == 200
    fake.down = True
    resp = await client.post("/petugas/api/withdrawals/1/approve", json={}, headers=csrf)
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert answer["message"] == (
        "persetujuan antri — menunggu API pusat / approval queued: waiting for the central API"
    )
    assert answer["withdrawal"]["status_text"] == "antri: persetujuan / queued: approval"
    again = await client.post("/petugas/api/withdrawals/1/approve", json={}, headers=csrf)
    assert again.status_code == 409, again.text
    assert again.json()["detail"] == (
        "persetujuan penarikan 1 sudah antri / already queued: the approval of withdrawal 1"
    )


# ---- 5. a movement's time is the gateway's -------------------------------------------------------


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00Z", "2026-12-06T10:00:00Z", "9999-12-31"])
@pytest.mark.parametrize("kind", ["sale", "transfer", "residue"])
async def test_a_client_cannot_give_a_movement_its_time(gateway: Gw, kind: str, at: str) -> None:
    _, fake, client, csrf = gateway
    body = {**BODIES[kind], "at": at}
    resp = await client.post(f"/petugas/api/stock/{PATHS[kind]}", json=body, headers=csrf)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == "isian at tidak dikenal / unknown field at"
    assert fake.stock_moves == []
    before = datetime.now(UTC)
    ok = await client.post(f"/petugas/api/stock/{PATHS[kind]}", json=BODIES[kind], headers=csrf)
    assert ok.status_code == 201, ok.text
    ((_, sent),) = fake.stock_moves
    assert before <= datetime.fromisoformat(sent["at"]) <= datetime.now(UTC)  # the gateway's


@pytest.mark.parametrize("sent", ["yes", "true", 1, 0, "0"])
async def test_a_yes_no_in_a_json_body_is_true_or_false_only(gateway: Gw, sent: Any) -> None:
    """The SMS review: `PUT /petugas/api/members/{no}/sms {"sms_opt_in": "yes"}` switched SMS
    on; a JSON yes/no is now true or false, anything else 422 in words."""
    _, _, client, csrf = gateway
    resp = await client.put(
        "/petugas/api/members/AMB-0004/sms", json={"sms_opt_in": sent}, headers=csrf
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"] == "SMS harus ya atau tidak / SMS opt-in must be yes or no"


def test_the_central_apis_422_reaches_the_attendant_in_its_words() -> None:
    """The central API's 422 keeps FastAPI's list shape, each message in words (api/validation.py):
    the gateway shows the messages, not the list's repr."""
    from gateway.central import _detail

    body = {
        "detail": [
            {"loc": ["body", "amount_idr"], "msg": "jumlah minimal Rp1 / amount at least Rp1"},
            {"loc": ["body", "reason"], "msg": "alasan wajib diisi / reason is required"},
        ]
    }
    assert _detail(httpx.Response(422, json=body)) == (
        "jumlah minimal Rp1 / amount at least Rp1; alasan wajib diisi / reason is required"
    )
    assert _detail(httpx.Response(409, json={"detail": "x"})) == "x"
