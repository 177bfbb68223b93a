"""Every refusal of the ledger and the login system answers with the status and the bilingual
title its class carries, through the API's one handler for :class:`WastebankError`."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi import Request

from api.deps import wastebank_error
from wastebank import access, errors, ledger

# The answers the API gave before the families (api/deps.py's table of ledger errors): a
# refusal keeps its status and its title.
ANSWERS: list[tuple[type[errors.WastebankError], int, str]] = [
    (ledger.LedgerError, 400, "permintaan ditolak / request refused"),
    (ledger.SecondPersonRequired, 403, "perlu orang kedua / a second person must do this"),
    (ledger.NotFound, 404, "tidak ditemukan / not found"),
    (ledger.NotAllowed, 403, "tidak diizinkan / not allowed"),
    (ledger.AlreadyVoided, 409, "sudah dibatalkan / already voided"),
    (ledger.InsufficientBalance, 409, "saldo tidak cukup / insufficient balance"),
    (ledger.InsufficientStock, 409, "stok tidak cukup / insufficient stock"),
    (ledger.BelowMinimum, 422, "di bawah penarikan minimum / below the minimum withdrawal"),
    (ledger.InvalidTransition, 409, "status tidak memungkinkan / not possible in this state"),
    (ledger.PriceHistoryLocked, 409, "riwayat harga terkunci / price history is locked"),
    (ledger.DepositRejected, 422, "setoran ditolak / deposit refused"),
    (
        ledger.IdempotencyKeyReused,
        409,
        "idempotency_key sudah dipakai setoran lain / idempotency_key used for another deposit",
    ),
    (access.AccessError, 422, "tidak sah / invalid"),
    (access.LoginRefused, 401, "gagal masuk / login refused"),
    (access.InvalidToken, 401, "token tidak sah atau kedaluwarsa / invalid or expired token"),
]


def _answer(exc: Exception) -> tuple[int, dict[str, str]]:
    response = wastebank_error(Request({"type": "http", "method": "GET", "path": "/x"}), exc)
    return response.status_code, json.loads(bytes(response.body))


@pytest.mark.parametrize(
    ("cls", "status", "title"), ANSWERS, ids=lambda v: getattr(v, "__name__", "")
)
def test_a_refusal_answers_its_status_and_title(
    cls: type[errors.WastebankError], status: int, title: str
) -> None:
    assert _answer(cls("why")) == (status, {"detail": f"{title}: why"})


def test_the_over_limit_errors_answer_as_the_limit_they_break() -> None:
    from wastebank.money_rules import Breach

    breach = Breach("money.manual_max_g", 1000, 2000, "di atas batas / over the limit")
    for cls in (ledger.OverLimit, ledger.DepositOverLimit):
        assert _answer(cls(breach)) == (
            422,
            {
                "detail": "di luar batas wajar / beyond a plausibility limit: "
                "di atas batas / over the limit"
            },
        )
    assert issubclass(ledger.DepositOverLimit, ledger.DepositRejected)


def test_too_many_attempts_is_a_429() -> None:
    status, body = _answer(access.TooManyAttempts(30))
    assert status == 429
    assert body["detail"].startswith("terlalu banyak percobaan / too many attempts: ")
    assert "30 s" in body["detail"]


def test_a_5xx_is_answered_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="api.deps"):
        answer = _answer(errors.SetupError("no key"))
    assert answer == (500, {"detail": "perlu pengaturan / setup needed: no key"})
    assert [r.exc_info is not None for r in caplog.records] == [True]


def test_every_ledger_and_access_error_is_in_a_family() -> None:
    families = (errors.Refused, errors.BadInput, errors.SetupError, errors.Unavailable)
    for module in (ledger, access):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                assert issubclass(obj, families), name
