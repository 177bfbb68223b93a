"""Indonesian mobile numbers as SMS needs them: one form, ``+62...``, for sending and matching.

Members' phones are kept as people typed them (``0812...``, ``62812...``, ``+62812...``); the
network gives a sender as ``+62812...``. Both are brought to ``+62`` plus the national number
before they are compared, so ``081200000001`` and ``+6281200000001`` are the same phone.

:func:`normalize` matches senders; :func:`mobile` chooses recipients: only an Indonesian mobile
number gets an SMS (a landline, a toll-free or a foreign number never does: the modem's SIM would
pay for a message nobody can read, or an international one).
"""

from __future__ import annotations

import re

# An Indonesian mobile number, after libphonenumber's metadata (google/libphonenumber,
# resources/PhoneNumberMetadata.xml, territory ID, <mobile>: nationalNumberPattern
# 8[1-35-9]\d{7,10}, possibleLengths 9-12; the same in python-phonenumbers' data/region_ID.py):
# +62, an 8, a second digit other than 0 (080x: toll-free, premium rate, shared cost) and 4 (no
# mobile range), then 7 to 10 digits: 0812-345-678 to 0812-3456-78901. Landlines begin 2-7 or 9.
MOBILE = re.compile(r"\+628[1-35-9][0-9]{7,10}")

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


def mobile(phone: str | None) -> str | None:
    """The ``+628...`` number an SMS to ``phone`` goes to, when it is an Indonesian mobile
    number (``08...``, ``62...`` or ``+62...``, :data:`MOBILE`); None for anything else."""
    number = normalize(phone)
    return number if number is not None and MOBILE.fullmatch(number) else None


def tail(phone: str) -> str:
    """The last 8 digits: enough to find candidates in SQL before comparing normalized."""
    return phone[-8:]
