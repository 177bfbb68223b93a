"""A spreadsheet cell as the value an import wants: text, a phone number, a NIK's problems, an RT
or RW, a price in whole Rupiah, an effective date; and the reasons a row is refused for them."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from typing import ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from wastebank.bulk_import.files import Cell

P = ParamSpec("P")
T = TypeVar("T")


def cell_text(value: Cell) -> str | None:
    """A cell as stripped text; None when empty. Whole numbers lose Excel's ``.0``."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def match_key(text: str) -> str:
    """For matching names: case and spacing ignored."""
    return " ".join(text.split()).casefold()


def normalize_phone(value: Cell) -> str:
    """An Indonesian number in national form (``0812...``): spaces, dashes, dots and brackets
    dropped, ``+62``/``62`` made ``0``, and a leading ``8`` given back the ``0`` Excel drops
    from a number cell. Mobile (08...) 10-13 digits, landline (0 + area code) 9-12 digits."""
    raw = cell_text(value) or ""
    digits = re.sub(r"[\s\-.()/]", "", raw)
    if digits.startswith("+62"):
        digits = "0" + digits[3:]
    elif digits.startswith("62"):
        digits = "0" + digits[2:]
    elif digits.startswith("8"):
        digits = "0" + digits
    ok = (
        digits.isascii()
        and digits.isdigit()
        and digits.startswith("0")
        and digits[1:2] != "0"
        and (10 <= len(digits) <= 13 if digits.startswith("08") else 9 <= len(digits) <= 12)
    )
    if not ok:
        raise ValueError(f"nomor telepon tidak sah / bad phone number {raw!r}")
    return digits


def nik_problem(value: Cell) -> str | None:
    """What is wrong with a NIK cell, or None. 16 digits: province (11-96), regency and
    district codes, birth date (day + 40 for women), month, year, sequence (not 0000). A number
    cell is refused: Excel keeps 15 significant digits, so the 16th is lost."""
    if isinstance(value, int | float):
        return (
            "NIK tersimpan sebagai angka (Excel membulatkan digit ke-16); format kolom sebagai "
            "Teks / NIK stored as a number: Excel loses its 16th digit; format the column as Text"
        )
    digits = "".join(ch for ch in (cell_text(value) or "") if ch not in " .-")
    if len(digits) != 16 or not digits.isascii() or not digits.isdigit():
        return "NIK harus 16 digit / a NIK is 16 digits"
    day, month = int(digits[6:8]), int(digits[8:10])
    if not 11 <= int(digits[:2]) <= 96 or not (1 <= day <= 31 or 41 <= day <= 71):
        return "NIK tidak sah (kode wilayah/tanggal lahir) / NIK: bad region code or birth date"
    if not 1 <= month <= 12 or digits[12:] == "0000":
        return "NIK tidak sah (bulan lahir/nomor urut) / NIK: bad birth month or sequence"
    return None


def rt_rw(value: Cell, what: str) -> str | None:
    text = cell_text(value)
    if text is None:
        return None
    digits = re.sub(rf"^{what}\.?\s*", "", text, flags=re.IGNORECASE)
    if not digits.isdigit() or not 0 < int(digits) < 1000:
        raise ValueError(f"{what} harus angka 1-999 / {what} is a number from 1 to 999: {text!r}")
    return f"{int(digits):03d}"


def parse_price(value: Cell) -> int:
    """Whole Rupiah: ``4000``, ``4.000``, ``Rp 4.000``, or a number cell without decimals."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if float(value).is_integer() and value >= 0:
            return int(value)
        raise ValueError(f"harga harus Rupiah bulat / a price is whole Rupiah: {value!r}")
    text = re.sub(r"^rp\.?\s*", "", (cell_text(value) or "").lower()).replace(" ", "")
    if re.fullmatch(r"\d+|\d{1,3}(\.\d{3})+", text):
        return int(text.replace(".", ""))
    raise ValueError(f"harga harus Rupiah bulat / a price is whole Rupiah: {value!r}")


def parse_when(value: Cell, tz: ZoneInfo) -> datetime:
    """An effective date: an Excel date cell, ``2026-12-01``, ``01/12/2026`` or ``1-12-2026``
    (day first, as Indonesia writes it), or an ISO date and time. A date means 00:00 and a time
    without an offset is local, in the bank's city."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tz)
    text = cell_text(value) or ""
    if m := re.fullmatch(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})", text):
        try:
            day = date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            raise ValueError(f"tanggal tidak sah / not a date: {text!r}") from None
        return datetime.combine(day, time(0), tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"tanggal tidak sah / not a date: {text!r} (2026-12-01 or 01/12/2026)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def missing_field(name: str, label: str) -> str:
    return f"kolom wajib kosong / missing field: {label} ({name})"


def checked(
    reasons: list[str], parse: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T | None:
    """``parse(*args, **kwargs)``; None when it refuses the value (a ValueError), its message
    then one of the row's ``reasons``."""
    try:
        return parse(*args, **kwargs)
    except ValueError as exc:
        reasons.append(str(exc))
        return None
