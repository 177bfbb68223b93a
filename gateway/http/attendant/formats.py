"""Money, weights and dates as the attendant page shows them (id-ID: dot thousands, comma
decimals, the bank's zone named WIB, WITA or WIT)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# The page's weights and money are the one rule of wastebank.formats (the receipts and the page's
# script, WB.kg, follow it too): 1,25 kg, 0,50 kg, 1,255 kg when the grams need it; Rp1.234.
from wastebank.formats import kg, rupiah

__all__ = ["DAYS", "MONTHS", "day_bounds", "jam", "kg", "rupiah", "tanggal"]

MONTHS = (
    "Januari Februari Maret April Mei Juni Juli Agustus September Oktober November Desember"
).split()
DAYS = "Senin Selasa Rabu Kamis Jumat Sabtu Minggu".split()


def tanggal(at: datetime, tz: ZoneInfo) -> str:
    """Senin, 30 November 2026 17.45 WIT."""
    local = at.astimezone(tz)
    return (
        f"{DAYS[local.weekday()]}, {local.day} {MONTHS[local.month - 1]} {local.year} "
        f"{local:%H.%M} {local.tzname() or ''}"
    ).rstrip()


def jam(at: datetime, tz: ZoneInfo) -> str:
    """17.45."""
    return f"{at.astimezone(tz):%H.%M}"


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """``day`` from its first moment to the next day's, in ``tz``."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    return start, datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
