"""The city's waste banks as the public and SIPSN see them: each bank of the ledger (its name,
kind, kelurahan, kecamatan, the prices it buys at now) with the facts a DLH publishes about it
(address, coordinates, opening hours, the bank's own public contact) from the city's data file.

The facts are the ``[[bank]]`` entries of the city data file (``cities_dir``/<code>.toml,
:func:`wastebank.reports.city_data`, beside the city's population and TPS count): facts the DLH
enters and publishes, changed without a migration or a restart. An entry names its bank by
``code``; an entry that is not valid, or names no bank of the city, is left out and said so
(:func:`bank_facts`' problems), never guessed at. Nothing personal is in it or read with it:
no member, no attendant, and a contact only as the bank's own number (docs/reports.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.reports.generation import ReportSettings, city_data
from wastebank.reports.scope import Scope


class BankFacts(BaseModel):
    """A ``[[bank]]`` entry of the city data file."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=64)
    address: str | None = Field(default=None, max_length=300, description="street address")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    opening_hours: str | None = Field(
        default=None, max_length=200, description='as people read it: "Sabtu 08.00-11.00 WIT"'
    )
    contact: str | None = Field(
        default=None,
        max_length=40,
        pattern=r"^\+?[0-9][0-9 -]{4,38}$",
        description="the bank's own public phone or WhatsApp number, never a person's",
    )

    @model_validator(mode="after")
    def _both_coordinates(self) -> BankFacts:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("lat and lon go together")
        return self


class PublicPrice(BaseModel):
    category_code: str
    name_id: str
    name_en: str
    unit: str
    price_idr: int


class PublicBank(BaseModel):
    """A bank as the public page lists it: nothing about its members or staff."""

    code: str
    name: str
    kind: str  # induk (BSI) | unit (BSU)
    parent_name: str | None
    kelurahan: str
    kecamatan: str
    address: str | None
    lat: float | None
    lon: float | None
    opening_hours: str | None
    contact: str | None
    prices_from: str | None = Field(description="the induk whose price list the bank buys at")
    prices: list[PublicPrice]


class BankDirectory(BaseModel):
    """The city's banks as anyone may read them, with the prices in force ``at``."""

    city_code: str
    city_name: str
    timezone: str
    at: datetime
    banks: list[PublicBank]


def bank_facts(
    city_code: str, known: set[str], settings: ReportSettings | None = None
) -> tuple[dict[str, BankFacts], list[str]]:
    """The city data file's ``[[bank]]`` entries by code, and what was wrong with the others
    (not valid; a code not among ``known``; a code twice)."""
    raw: Any = city_data(city_code, settings).get("bank", [])
    facts: dict[str, BankFacts] = {}
    problems: list[str] = []
    for i, entry in enumerate(raw if isinstance(raw, list) else [raw], start=1):
        name = entry.get("code", f"#{i}") if isinstance(entry, dict) else f"#{i}"
        try:
            item = BankFacts.model_validate(entry)
        except ValidationError as exc:
            why = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '-'}: {e['msg']}" for e in exc.errors()
            )
            problems.append(f"[[bank]] {name}: {why}")
            continue
        if item.code not in known:
            problems.append(f"[[bank]] {item.code}: bukan bank kota ini / not a bank of this city")
        elif item.code in facts:
            problems.append(f"[[bank]] {item.code}: dua kali / entered twice (the first is used)")
        else:
            facts[item.code] = item
    return facts, problems


def city_banks(session: Session, scope: Scope) -> list[ledger.Bank]:
    """The city's banks by name."""
    return list(
        session.scalars(
            select(ledger.Bank)
            .where(ledger.Bank.city_id == scope.city_id)
            .order_by(ledger.Bank.name)
        )
    )


def bank_directory(
    session: Session, scope: Scope, at: datetime, settings: ReportSettings | None = None
) -> tuple[BankDirectory, list[str]]:
    """Every bank of the city with its facts and the prices in force at ``at``; and the city
    file's ``[[bank]]`` entries left out, and why (for operators, not the public)."""
    banks = city_banks(session, scope)
    facts, problems = bank_facts(scope.city_code, {b.code for b in banks}, settings)
    by_id = {b.id: b for b in banks}
    out = []
    for b in banks:
        f = facts.get(b.code) or BankFacts(code=b.code)
        info = scope.banks[b.id]
        owner = by_id.get(b.price_bank_id)
        prices = [
            PublicPrice(
                category_code=c.code,
                name_id=c.name_id,
                name_en=c.name_en,
                unit=c.unit,
                price_idr=p.price_per_kg_idr,
            )
            for c, p in sorted(ledger.list_in_force(session, b, at), key=lambda cp: cp[0].name_id)
        ]
        parent = by_id.get(b.parent_id) if b.parent_id is not None else None
        out.append(
            PublicBank(
                code=b.code,
                name=b.name,
                kind=b.kind,
                parent_name=parent.name if parent else None,
                kelurahan=info.kelurahan,
                kecamatan=info.kecamatan,
                address=f.address,
                lat=f.lat,
                lon=f.lon,
                opening_hours=f.opening_hours,
                contact=f.contact,
                prices_from=owner.name if owner is not None and owner.id != b.id else None,
                prices=prices,
            )
        )
    directory = BankDirectory(
        city_code=scope.city_code,
        city_name=scope.city_name,
        timezone=scope.timezone,
        at=at,
        banks=out,
    )
    return directory, problems
