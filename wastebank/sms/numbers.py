"""Indonesian mobile numbers as SMS needs them: one form, ``+62...``, for sending and matching.

Members' phones are kept as people typed them (``0812...``, ``62812...``, ``+62812...``); the
network gives a sender as ``+62812...``. Both are brought to ``+62`` plus the national number
before they are compared, so ``081200000001`` and ``+6281200000001`` are the same phone.
"""

from __future__ import annotations

MIN_DIGITS = 10  # 62 + a national mobile number of 8 digits at least
MAX_DIGITS = 15  # E.164


def normalize(phone: str | None) -> str | None:
    """``+62...`` for a number written ``0...``, ``62...`` or ``+...``; None for anything else
    (a number without its leading 0 or country code is not guessed at, nor an alphanumeric
    sender such as an operator's)."""
    if not phone:
        return None
    raw = "".join(phone.split()).replace("-", "")
    plus = raw.startswith("+")
    digits = raw[1:] if plus else raw
    if not digits.isascii() or not digits.isdigit():
        return None
    if not plus and digits.startswith("0"):
        digits = "62" + digits[1:]
    elif not plus and not digits.startswith("62"):
        return None
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None
    return "+" + digits


def tail(phone: str) -> str:
    """The last 8 digits: enough to find candidates in SQL before comparing normalized."""
    return phone[-8:]
