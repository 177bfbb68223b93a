"""Bad input to the API and its pages, answered in words: Bahasa Indonesia first, English second,
naming the field ("jumlah minimal Rp1 / amount must be greater than or equal to Rp1"),
never pydantic's English.

A JSON request that does not fit its schema is 422 with FastAPI's shape, ``{"detail": [{"loc",
"msg", "type"}]}`` (what the OpenAPI schema declares and clients read), each ``msg`` in words
and no ``input`` echoed (it may be a password or a PIN). A page's form post that does not fit
(a browser's, its Accept naming HTML, on a page path) gets the error page with the messages.

The wording follows the gateway's (gateway/http/validation.py; the API may not import the
gateway, so the fields both take and their reading are :mod:`wastebank.field_words`): a field's
words from :data:`FIELD_LABELS`, a field ending in ``_idr`` is money (whole
Rupiah, bounds as Rp1.000), in ``_g`` (or ``grams``) a weight (whole grams).

A page's money field is typed by people, so it is read here as id-ID digits
(:func:`form_rupiah`): "15.000" and "15000" are Rp15.000, anything else is refused in words.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.deps import SESSION_COOKIE
from api.web import refusal
from wastebank import access, field_words
from wastebank.formats import rupiah, thousands

__all__ = ["FIELD_LABELS", "form_rupiah", "message", "messages", "request_refused", "words"]

log = logging.getLogger("api.validation")

FIELD_LABELS: Final[dict[str, tuple[str, str]]] = {
    **field_words.LABELS,
    "counted_cash_idr": ("uang terhitung", "counted cash"),
    "opening_cash_idr": ("saldo awal", "opening float"),
    "revenue_idr": ("pendapatan", "revenue"),
    "quantity": ("jumlah satuan", "quantity"),
    "note": ("catatan", "note"),
    "collector": ("pengepul", "collector"),
    "destination": ("nomor tujuan", "destination number"),
    "payout_ref": ("referensi", "reference"),
    "kelurahan": ("kelurahan/desa", "kelurahan"),
    "cards": ("kartu", "cards"),
    "at": ("waktu", "time"),
    "measured_at": ("waktu timbang", "time weighed"),
    "effective_from": ("berlaku sejak", "effective from"),
    "start": ("tanggal awal", "start"),
    "end": ("tanggal akhir", "end"),
    "month": ("bulan", "month"),
    "limit": ("batas", "limit"),
    "csrf_token": ("token formulir", "form token"),
    "bank_code": ("kode bank", "bank code"),
    "withdrawal_id": ("nomor penarikan", "withdrawal number"),
    "event_id": ("nomor setoran", "deposit id"),
}
"""A field's name as people read it: (Indonesian, English); others read as their name."""

_SKIP: Final = frozenset({"body", "query", "path", "header", "cookie"})
_INT_ERRORS: Final = frozenset({"int_parsing", "int_type", "int_from_float"})
_NUMBER_ERRORS: Final = frozenset(
    {"float_parsing", "float_type", "decimal_type", "decimal_parsing", "finite_number"}
)
_DATE_ERRORS: Final = frozenset(
    {"date_parsing", "date_type", "date_from_datetime_parsing", "date_from_datetime_inexact"}
)
_TIME_ERRORS: Final = frozenset(
    {"datetime_parsing", "datetime_type", "datetime_from_date_parsing", "datetime_object_invalid"}
)
_BOUNDS: Final = {
    "greater_than_equal": ("minimal", "must be greater than or equal to", "ge"),
    "greater_than": ("harus lebih dari", "must be greater than", "gt"),
    "less_than_equal": ("maksimal", "must be less than or equal to", "le"),
    "less_than": ("harus kurang dari", "must be less than", "lt"),
}
_PLAIN: Final[dict[str, str]] = {
    "missing": "{i} wajib diisi / {e} is required",
    "string_pattern_mismatch": "{i} tidak sah / {e} is not valid",
    "bool_parsing": "{i} harus ya atau tidak / {e} must be yes or no",
    "bool_type": "{i} harus ya atau tidak (true/false) / {e} must be true or false",
    "string_type": "{i} harus teks / {e} must be text",
    "string_unicode": "{i} harus teks / {e} must be text",
    "list_type": "{i} harus daftar / {e} must be a list",
    "extra_forbidden": "isian {i} tidak dikenal / unknown field {e}",
    "literal_error": "{i} harus salah satu dari {atau} / {e} must be one of {expected}",
    "enum": "{i} harus salah satu dari {atau} / {e} must be one of {expected}",
    "string_too_long": "{i} maksimal {max_length} karakter / {e} takes at most {max_length} "
    "characters",
    "too_long": "{i} maksimal {max_length} / {e} takes at most {max_length}",
    "timezone_aware": "{i} perlu zona waktu (mis. +09:00) / {e} needs its offset (e.g. +09:00)",
}
_PLAIN.update(
    {
        "string_too_short": "{i} minimal {min_length} karakter / {e} needs at least {min_length} "
        "characters"
    }
    | dict.fromkeys(_NUMBER_ERRORS, "{i} harus angka yang sah / {e} must be a valid number")
    | dict.fromkeys(
        _DATE_ERRORS,
        "{i} harus tanggal yang sah (TTTT-BB-HH) / {e} must be a valid date (YYYY-MM-DD)",
    )
    | dict.fromkeys(
        _TIME_ERRORS,
        "{i} harus waktu ISO 8601 yang sah (mis. 2026-12-06T10:00:00+09:00) / {e} must be a "
        "valid ISO 8601 time (e.g. 2026-12-06T10:00:00+09:00)",
    )
)
_BODY: Final = {
    "json_invalid": "isi permintaan bukan JSON yang sah / the request body is not valid JSON",
    "model_attributes_type": "isi permintaan harus objek JSON / the body must be a JSON object",
    "dict_type": "isi permintaan harus objek JSON / the body must be a JSON object",
    "model_type": "isi permintaan harus objek JSON / the body must be a JSON object",
}


def _field(loc: Sequence[Any]) -> str:
    return field_words.field_of(loc, _SKIP)


def _words(field: str) -> tuple[str, str]:
    return field_words.field_words(field, FIELD_LABELS)


def _money(field: str) -> bool:
    return field.endswith("_idr")


def _weight(field: str) -> bool:
    return field.endswith("_g") or field == "grams"


def _whole(field: str, idn: str, eng: str) -> str:
    if _money(field):
        return f"{idn} harus bilangan bulat Rupiah / {eng} must be whole Rupiah"
    if _weight(field):
        return f"{idn} harus bilangan bulat gram / {eng} must be whole grams"
    return f"{idn} harus bilangan bulat / {eng} must be a whole number"


def _bound(field: str, value: object) -> tuple[str, str]:
    """A bound as people read it, (Indonesian, English): money as Rp1.000 and a weight as
    1.000 g in both (the pages' id-ID amounts); another number id-ID in the Indonesian half
    (20.000, 0,45) and as written in the English one (20000, 0.45)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value), str(value)
    if isinstance(value, int) and _money(field):
        return rupiah(value), rupiah(value)
    if isinstance(value, int) and _weight(field):
        return f"{thousands(value)} g", f"{thousands(value)} g"
    plain = f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, int):
        return thousands(value), plain
    return plain.replace(".", ","), plain


def _ours(error: Mapping[str, Any], idn: str, eng: str) -> str:
    """A validator's own words ("id / en": ours say both), with the field named in each half."""
    text = (
        str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    )
    if not idn and not eng:
        return text
    if " / " in text:
        first, second = text.split(" / ", 1)
        return f"{idn}: {first} / {eng}: {second}"
    return f"{idn} tidak sah: {text} / {eng} is not valid: {text}"


def message(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors (``type``, ``loc``, ``ctx``) as one Indonesian-first sentence."""
    kind = str(error.get("type", ""))
    field = _field(error.get("loc") or ())
    idn, eng = _words(field)
    ctx = dict(error.get("ctx") or {})
    if kind in _BODY and (kind == "json_invalid" or not field):
        return _BODY[kind]
    if kind in _INT_ERRORS:
        return _whole(field, idn, eng)
    if kind in _BOUNDS:
        i, e, key = _BOUNDS[kind]
        bound_id, bound_en = _bound(field, ctx.get(key))
        return f"{idn} {i} {bound_id} / {eng} {e} {bound_en}"
    if kind in ("value_error", "assertion_error"):
        return _ours(error, *(_words(field) if field else ("", "")))
    blank = ctx.get("min_length") == 1 or ctx.get("pattern") == r"\S"  # a text left empty
    if blank and kind in ("string_too_short", "string_pattern_mismatch"):
        return f"{idn} wajib diisi / {eng} is required"
    template = _PLAIN.get(kind, "{i} tidak sah / {e} is not valid")
    expected = str(ctx.get("expected", ""))
    return template.format_map(
        {"i": idn, "e": eng, "max_length": "", "min_length": "", **ctx}
        | {"expected": expected, "atau": field_words.atau(expected)}
    )


def messages(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's error items (``loc``, ``msg``, ``type``) with ``msg`` in words, a field's first
    error only (a union's every branch would repeat it)."""
    out: dict[str, dict[str, Any]] = {}
    for error in errors:
        loc = list(error.get("loc") or ())
        if (field := _field(loc)) not in out:
            out[field] = {"loc": loc, "msg": message(error), "type": error.get("type", "")}
    return list(out.values())


def words(exc: ValidationError | RequestValidationError) -> str:
    """A model's or a request's errors as one line (a page's form error)."""
    return "; ".join(item["msg"] for item in messages(exc.errors()))


# ---- a page's typed money ---------------------------------------------------------------------

_ID_DIGITS: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+")


def form_rupiah(typed: str, field: str = "amount_idr") -> int:
    """A money field of a page's form, typed as id-ID digits: ``15.000`` (dots between groups
    of three) or ``15000``. Anything else ("10_000", "1e4", "10000,5", "15.00", fullwidth
    digits, nothing at all) is a :class:`ValueError` in words, never a guess: a misread amount
    is money paid wrong."""
    text = typed.strip()
    if not _ID_DIGITS.fullmatch(text):
        idn, eng = _words(field)
        raise ValueError(
            f"{idn} harus angka Rupiah, mis. 15.000 atau 15000 / {eng} must be whole Rupiah in "
            "digits, e.g. 15.000 or 15000"
        )
    return int(text.replace(".", ""))


# ---- the handler ------------------------------------------------------------------------------


def _page_principal(request: Request) -> access.Principal | None:
    """Who is signed in on the pages, for the error page's header (None if nobody)."""
    token = request.cookies.get(SESSION_COOKIE)
    state = request.state
    if not token or getattr(state, "engine", None) is None:
        return None
    try:
        claims = access.read_claims(token, state.signing_key, "session")
    except access.InvalidToken:
        return None
    with Session(state.engine) as session:
        return access.principal(session, claims.user_id, claims.version, claims.jti)


def request_refused(request: Request, exc: Exception) -> Response:
    """The app's handler of :class:`RequestValidationError` (see the module's docstring). Sync:
    Starlette runs it in a worker thread, so the error page may read who is signed in."""
    assert isinstance(exc, RequestValidationError)
    found = messages(exc.errors())
    detail = "; ".join(item["msg"] for item in found)
    log.info("masukan ditolak / bad input: %s %s: %s", request.method, request.url.path, detail)
    html = "text/html" in request.headers.get("accept", "")
    if html and not request.url.path.startswith("/api/") and hasattr(request.state, "signing_key"):
        key = request.state.signing_key
        return refusal(request, key, _page_principal(request), 422, detail)
    return JSONResponse({"detail": found}, 422)
