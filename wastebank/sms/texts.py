"""Every text the bank sends by SMS, in one place, and the limits they keep.

One SMS is 160 characters of the GSM 7-bit alphabet (3GPP TS 23.038): a character outside it
makes the phone network send the whole message as UCS-2, 70 characters a part, and a text past
the limit goes as two or three paid parts. So every text here is GSM-7 only (names are
transliterated: "é" stays, "ā" becomes "a", anything else "?") and at most
:data:`MAX_SEPTETS` septets (the extension characters ``^{}\\[~]|€`` count two): a long bank or
category name is shortened, never the amounts, the time or the balance.

Rupiah, weights and local time are :mod:`wastebank.formats`' (``Rp5.000``, ``1,25 kg``,
``6 Des 2026 09.30 WIT``): the receipt on paper and the one by SMS read alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from wastebank.formats import quantity_text, rupiah, tanggal_waktu, unaccented

MAX_SEPTETS = 160
"""One SMS: 160 septets of GSM-7 (a longer text is sent, and paid, as several)."""

MIN_NAME = 12
"""A shortened bank or category name keeps at least this many characters."""

# GSM 03.38's basic alphabet (without ESC), and its extension table (two septets each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

PAYOUT_LABELS = {"cash": "tunai", "bank_transfer": "transfer bank", "ewallet": "dompet digital"}


def septets(text: str) -> int:
    """The text's length in GSM-7 septets; ValueError for a character outside GSM-7."""
    count = 0
    for ch in text:
        if ch in GSM7_BASIC:
            count += 1
        elif ch in GSM7_EXTENSION:
            count += 2
        else:
            raise ValueError(f"{ch!r} (U+{ord(ch):04X}) is not in the GSM 7-bit alphabet")
    return count


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7(text: str) -> str:
    """``text`` in the GSM 7-bit alphabet: kept where it is, accents dropped where that makes
    it so, '?' otherwise; line breaks and tabs become spaces (a name is one line)."""
    out = []
    for ch in " ".join(text.split()):
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
            continue
        plain = unaccented(ch)
        out.append(plain if plain and is_gsm7(plain) else "?")
    return "".join(out)


def _shortened(name: str, by: int) -> str:
    """``name`` less ``by`` characters (at least :data:`MIN_NAME` kept), ending in '.'."""
    if by <= 0:
        return name
    keep = max(MIN_NAME, len(name) - by - 1)
    return name if keep >= len(name) else name[:keep].rstrip() + "."


def fit(build: Callable[[str, str], str], bank: str, what: str = "") -> str:
    """``build(bank, what)`` in GSM-7 within :data:`MAX_SEPTETS`: the ``what`` (a category)
    is shortened first, then the bank's name. AssertionError if even then it does not fit (the
    fixed parts of a template are too long: a bug the text tests catch)."""
    bank, what = gsm7(bank), gsm7(what)
    text = build(bank, what)
    over = septets(text) - MAX_SEPTETS
    if over > 0 and what:
        what = _shortened(what, over)
        text = build(bank, what)
        over = septets(text) - MAX_SEPTETS
    if over > 0:
        bank = _shortened(bank, over)
        text = build(bank, what)
    length = septets(text)
    assert length <= MAX_SEPTETS, f"SMS of {length} septets: {text!r}"
    return text


def deposit_text(
    *,
    bank: str,
    category: str,
    unit: str,
    net_g: int,
    quantity: int | None,
    amount_idr: int,
    at: datetime,
    tz: ZoneInfo,
    balance_idr: int,
) -> str:
    """``Bank Sampah Batu Merah: setoran 1,25 kg Plastik PET Rp5.000 masuk 6 Des 2026 09.30
    WIT. Saldo Rp125.000.``"""
    amount = quantity_text(unit, net_g, quantity)
    tail = f"{rupiah(amount_idr)} masuk {tanggal_waktu(at, tz)}. Saldo {rupiah(balance_idr)}."
    return fit(lambda b, c: f"{b}: setoran {amount} {c} {tail}", bank, category)


def withdrawal_text(
    *, bank: str, amount_idr: int, method: str, at: datetime, tz: ZoneInfo, balance_idr: int
) -> str:
    """``Bank Sampah Batu Merah: penarikan Rp50.000 tunai dibayar 6 Des 2026 10.15 WIT.
    Saldo Rp75.000.``"""
    how = PAYOUT_LABELS.get(method, method)
    body = f"penarikan {rupiah(amount_idr)} {how} dibayar {tanggal_waktu(at, tz)}."
    return fit(lambda b, _: f"{b}: {body} Saldo {rupiah(balance_idr)}.", bank)


def balance_text(
    *,
    bank: str,
    member_no: str,
    balance_idr: int,
    available_idr: int,
    at: datetime,
    tz: ZoneInfo,
) -> str:
    """``Bank Sampah Batu Merah: saldo AMB-0001 Rp125.000 per 6 Des 2026 10.20 WIT.``, with
    ``, dapat ditarik Rp100.000`` when open withdrawals hold part of it."""
    held = "" if available_idr == balance_idr else f", dapat ditarik {rupiah(available_idr)}"
    body = f"saldo {gsm7(member_no)} {rupiah(balance_idr)}{held} per {tanggal_waktu(at, tz)}."
    return fit(lambda b, _: f"{b}: {body}", bank)


BALANCE_COMMANDS = frozenset({"saldo", "cek saldo"})
"""What a member texts to get their balance, in any case, spacing and final punctuation."""


def is_balance_request(text: str) -> bool:
    """``SALDO``, ``saldo``, ``Cek Saldo``, `` cek  saldo. ``: yes; anything else: no."""
    return " ".join(text.split()).strip(" .!?").casefold() in BALANCE_COMMANDS
