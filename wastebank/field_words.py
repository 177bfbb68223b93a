"""A request field's name as people read it, for the words of a refusal: one table and one
reading for the central API (api/validation.py) and the gateway's endpoint
(gateway/http/validation.py), which may not import each other. Each adds the fields only its
own routes take.

Stdlib only, and nothing imported: a gateway on a Pi loads it with its endpoint.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

LABELS: Final[Mapping[str, tuple[str, str]]] = {
    "amount_idr": ("jumlah", "amount"),
    "price_idr": ("harga", "price"),
    "net_g": ("berat", "weight"),
    "grams": ("berat", "weight"),
    "received_g": ("berat diterima", "weight received"),
    "reason": ("alasan", "reason"),
    "member_no": ("nomor nasabah", "member number"),
    "category": ("jenis sampah", "category"),
    "category_code": ("jenis sampah", "category"),
    "method": ("cara bayar", "payment method"),
    "payment_method": ("cara bayar", "payment method"),
    "name": ("nama", "name"),
    "phone": ("nomor HP", "phone number"),
    "sms_opt_in": ("SMS", "SMS opt-in"),
    "nik": ("NIK", "NIK"),
    "rt": ("RT", "RT"),
    "rw": ("RW", "RW"),
    "pin": ("PIN", "PIN"),
    "uid": ("UID kartu", "card UID"),
    "kind": ("jenis", "kind"),
    "username": ("nama pengguna", "username"),
    "password": ("kata sandi", "password"),
    "day": ("tanggal", "date"),
    "date": ("tanggal", "date"),
}
"""The fields both sides take: (Indonesian, English)."""


def field_of(loc: Sequence[Any], skip: Collection[str]) -> str:
    """The field a location points at: its last name (not an index, not one of ``skip``: where
    the value came from, "body", "query"...)."""
    names = [str(part) for part in loc if isinstance(part, str) and part not in skip]
    return names[-1] if names else ""


def field_words(field: str, labels: Mapping[str, tuple[str, str]]) -> tuple[str, str]:
    """``field`` as people read it: from ``labels``; else a name ending in ``_idr`` is an
    amount, in ``_g`` a weight; else the name with spaces."""
    if field in labels:
        return labels[field]
    if field.endswith("_idr"):
        return ("jumlah", "amount")
    if field.endswith("_g"):
        return ("berat", "weight")
    plain = field.replace("_", " ")
    return (plain or "isian", plain or "the input")


def atau(expected: str) -> str:
    """A list of values worded in English ("'a', 'b' or 'c'") for the Indonesian half: its last
    "or" is "atau"."""
    head, _, last = expected.rpartition(" or ")
    return f"{head} atau {last}" if head else expected
