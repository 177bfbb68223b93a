"""Bad input to the local endpoint, answered in words an attendant reads: Bahasa Indonesia first,
English second, naming the field ("jumlah harus bilangan bulat Rupiah / amount must be whole
Rupiah"), never FastAPI's list of errors.

A JSON route answers 422 ``{"detail": "<the messages, joined by '; '>", "errors": [{"field",
"message"}]}``: ``detail`` is what the pages show (``WB.ApiError.message``), ``errors`` lets a
form mark its fields. A browser's form post or page (its Accept names HTML) gets the page back
with the message instead (the login form when nobody is signed in). Every refusal is logged
(path and messages, never the values: a password may be one) and counted in
:data:`REFUSED` for the operator.

A field's words come from :data:`FIELD_LABELS`; a page's routes may add theirs with
:func:`label`. A field ending in ``_idr`` is money (whole Rupiah), in ``_g`` a weight (whole
grams).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.http.attendant.pages import error_page
from gateway.http.routing import Refused
from wastebank import field_words
from wastebank.formats import thousands

__all__ = ["FIELD_LABELS", "REFUSED", "label", "message", "messages", "validation_refused"]

log = logging.getLogger("wastebank.gateway")

FIELD_LABELS: dict[str, tuple[str, str]] = {
    **field_words.LABELS,
    "counted_idr": ("uang terhitung", "counted cash"),
    "counted_cash_idr": ("uang tunai dihitung", "cash counted"),
    "opening_cash_idr": ("saldo awal", "opening cash"),
    "price_per_kg_idr": ("harga per kg", "price per kg"),
    "weight_g": ("berat", "weight"),
    "reference": ("referensi", "reference"),
    "buyer": ("pembeli", "buyer"),
    "collector": ("pengepul", "buyer"),
    "q": ("pencarian", "search"),
}
"""A field's name as the attendant reads it: (Indonesian, English)."""

REFUSED: Final[Counter[str]] = Counter()
"""Requests refused as bad input since the gateway started, per route (its template, e.g.
``/petugas/api/members/{member_no}/pin``: bounded, whatever paths a client invents), for the
operator: their sum, with the 413s, is ``bad_requests`` in ``/health``."""

_INT_ERRORS: Final = frozenset(
    {"int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "decimal_type"}
)


def label(field: str, indonesian: str, english: str) -> None:
    """Name a page's field in the messages (e.g. ``label("pengepul", "pengepul", "buyer")``)."""
    FIELD_LABELS[field] = (indonesian, english)


def _field(loc: Sequence[Any]) -> str:
    return field_words.field_of(loc, ("body", "query"))


def _words(field: str) -> tuple[str, str]:
    return field_words.field_words(field, FIELD_LABELS)


def _whole(field: str, idn: str, eng: str) -> str:
    if field.endswith("_idr"):
        return f"{idn} harus bilangan bulat Rupiah / {eng} must be whole Rupiah"
    if field.endswith("_g") or field == "grams":
        return f"{idn} harus bilangan bulat gram / {eng} must be whole grams"
    return f"{idn} harus bilangan bulat / {eng} must be a whole number"


_BOUNDS: Final = {
    "greater_than_equal": ("minimal", "at least", "ge"),
    "greater_than": ("harus lebih dari", "must be more than", "gt"),
    "less_than_equal": ("maksimal", "at most", "le"),
    "less_than": ("harus kurang dari", "must be less than", "lt"),
}
_PLAIN: Final = {
    "missing": "{i} wajib diisi / {e} is required",
    "string_pattern_mismatch": "{i} tidak sah / {e} is not valid",
    "bool_parsing": "{i} harus ya atau tidak / {e} must be yes or no",
    "bool_type": "{i} harus ya atau tidak / {e} must be yes or no",
    "string_type": "{i} harus teks / {e} must be text",
    "string_unicode": "{i} harus teks / {e} must be text",
    "extra_forbidden": "isian {i} tidak dikenal / unknown field {e}",
    "literal_error": "{i} harus salah satu dari {atau} / {e} must be one of {expected}",
    "enum": "{i} harus salah satu dari {atau} / {e} must be one of {expected}",
    "string_too_long": "{i} maksimal {max_length} karakter / {e} takes at most {max_length} "
    "characters",
}
_BODY: Final = {
    "json_invalid": "isi permintaan bukan JSON yang sah / the request body is not valid JSON",
    "model_attributes_type": "isi permintaan harus objek JSON / the body must be a JSON object",
    "dict_type": "isi permintaan harus objek JSON / the body must be a JSON object",
    "model_type": "isi permintaan harus objek JSON / the body must be a JSON object",
}


def message(error: Mapping[str, Any]) -> str:
    """One error (:data:`gateway.http.fields.Error`: ``type``, ``loc``, ``ctx``, typed as
    pydantic typed it) as one Indonesian-first sentence."""
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
        n = _number(ctx.get(key))
        return f"{idn} {i} {n} / {eng} {e} {n}"
    if kind == "string_too_short":
        n = ctx.get("min_length")
        if n == 1:
            return f"{idn} wajib diisi / {eng} is required"
        return f"{idn} minimal {n} karakter / {eng} needs at least {n} characters"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == r"\S":  # not blank
        return f"{idn} wajib diisi / {eng} is required"
    template = _PLAIN.get(kind, "{i} tidak sah / {e} is not valid")
    expected = str(ctx.get("expected", ""))  # fields.py words the list in English
    return template.format_map(
        {"i": idn, "e": eng, "max_length": "", **ctx}
        | {"expected": expected, "atau": field_words.atau(expected)}
    )


def _number(n: Any) -> Any:
    """A bound as the attendant reads numbers (id-ID: ``1.000.000.000.000``)."""
    return thousands(n) if isinstance(n, int) and not isinstance(n, bool) else n


def messages(errors: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Each error's field and message, a field's first message only, in order."""
    out: dict[str, str] = {}
    for error in errors:
        out.setdefault(_field(error.get("loc") or ()), message(error))
    return list(out.items())


async def validation_refused(request: Request, exc: Exception) -> Response:
    """The endpoint's handler of :class:`~gateway.http.routing.Refused` (see the module's
    docstring)."""
    assert isinstance(exc, Refused)
    found = messages(exc.errors())
    detail = "; ".join(text for _, text in found)
    route = request.scope.get("route")
    REFUSED[getattr(route, "path", "(lain / other)")] += 1
    log.info("masukan ditolak / bad input: %s %s: %s", request.method, request.url.path, detail)
    html = "text/html" in request.headers.get("accept", "")
    if html and request.url.path.startswith("/petugas") and "/api/" not in request.url.path:
        return error_page(request, detail, 422)
    return JSONResponse(
        {"detail": detail, "errors": [{"field": f, "message": m} for f, m in found]},
        422,
        headers={"Cache-Control": "no-store"},
    )
