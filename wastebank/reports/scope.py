"""A city as the reports see it: its zone, its banks with their kelurahan and kecamatan, and
every category with its SIPSN and material class; and the groups and periods figures come in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger

Group = Literal["bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class"]
Period = Literal["day", "week", "month", "year", "total"]
Basis = Literal["measured", "estimated", "mixed", "none"]

GROUPS: tuple[str, ...] = ("bank", "kelurahan", "kecamatan", "city", "category", "sipsn_class")
PERIODS: tuple[str, ...] = ("day", "week", "month", "year", "total")

SIPSN_NAMES: dict[str, tuple[str, str]] = {
    ledger.SipsnClass.SISA_MAKANAN: ("Sisa makanan", "Food waste"),
    ledger.SipsnClass.KAYU_RANTING: ("Kayu, ranting, daun", "Wood, twigs, leaves"),
    ledger.SipsnClass.KERTAS_KARTON: ("Kertas, karton", "Paper, cardboard"),
    ledger.SipsnClass.PLASTIK: ("Plastik", "Plastic"),
    ledger.SipsnClass.LOGAM: ("Logam", "Metal"),
    ledger.SipsnClass.KAIN: ("Kain", "Textile"),
    ledger.SipsnClass.KARET_KULIT: ("Karet, kulit", "Rubber, leather"),
    ledger.SipsnClass.KACA: ("Kaca", "Glass"),
    ledger.SipsnClass.LAINNYA: ("Lainnya", "Other"),
}


@dataclass(frozen=True)
class BankInfo:
    code: str
    name: str
    kelurahan: str
    kecamatan: str


@dataclass(frozen=True)
class CategoryInfo:
    code: str
    name_id: str
    name_en: str
    sipsn_class: str
    material_class: str


@dataclass(frozen=True)
class Scope:
    """A city: its zone, its banks (by id) and every category (by id)."""

    city_id: int
    city_code: str
    city_name: str
    timezone: str
    banks: dict[int, BankInfo]
    categories: dict[int, CategoryInfo]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_scope(session: Session, city_id: int | None = None, city_code: str | None = None) -> Scope:
    """The city ``city_id`` (or ``city_code``; neither: the first city). Raises ledger.NotFound."""
    if city_id is not None:
        city = session.get(ledger.City, city_id)
    elif city_code is not None:
        city = session.scalar(select(ledger.City).where(ledger.City.code == city_code))
    else:
        city = ledger.first_city(session)
    if city is None:
        raise ledger.NotFound(f"unknown city {city_code or city_id!r}")
    rows = session.execute(
        select(ledger.Bank.id, ledger.Bank.code, ledger.Bank.name, ledger.Kelurahan.name)
        .add_columns(ledger.Kecamatan.name)
        .join(ledger.Kelurahan, ledger.Bank.kelurahan_id == ledger.Kelurahan.id)
        .join(ledger.Kecamatan, ledger.Kelurahan.kecamatan_id == ledger.Kecamatan.id)
        .where(ledger.Bank.city_id == city.id)
    )
    banks = {r[0]: BankInfo(code=r[1], name=r[2], kelurahan=r[3], kecamatan=r[4]) for r in rows}
    categories = {
        c.id: CategoryInfo(c.code, c.name_id, c.name_en, c.sipsn_class, c.material_class)
        for c in session.scalars(select(ledger.Category))
    }
    return Scope(city.id, city.code, city.name, city.timezone, banks, categories)
