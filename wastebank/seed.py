"""Seed a city from a TOML file (the demo city by default). Idempotent: existing rows are kept."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from wastebank import ledger

DEMO_CITY = Path(__file__).parent / "data" / "demo_city.toml"


@dataclass(frozen=True)
class SeedSummary:
    city: str
    timezone: str
    banks: list[str]
    members: dict[str, list[str]]  # member_no -> card uids
    member_banks: dict[str, str]  # member_no -> bank code
    categories: list[str]

    def __str__(self) -> str:
        return (
            f"{self.city} ({self.timezone}): {len(self.banks)} bank sampah, "
            f"{len(self.members)} nasabah, {len(self.categories)} jenis sampah"
        )


def load_city(path: Path = DEMO_CITY) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def seed(engine: Engine, data: dict[str, Any]) -> SeedSummary:
    with Session(engine) as s:
        c = data["city"]
        city = s.scalar(select(ledger.City).where(ledger.City.code == c["code"]))
        if city is None:
            city = ledger.City(code=c["code"], name=c["name"], timezone=c["timezone"])
            s.add(city)
            s.flush()
        categories: dict[str, ledger.Category] = {}
        for cat in data["category"]:
            row = s.scalar(select(ledger.Category).where(ledger.Category.code == cat["code"]))
            if row is None:
                row = ledger.Category(
                    code=cat["code"], name_id=cat["name_id"], name_en=cat["name_en"]
                )
                s.add(row)
                s.flush()
            categories[cat["code"]] = row
        banks: dict[str, ledger.Bank] = {}
        for b in data["bank"]:
            bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == b["code"]))
            if bank is None:
                bank = ledger.Bank(
                    code=b["code"],
                    name=b["name"],
                    city_id=city.id,
                    kecamatan=b["kecamatan"],
                    kelurahan=b["kelurahan"],
                )
                s.add(bank)
                s.flush()
            banks[b["code"]] = bank
            since = datetime.fromisoformat(b["effective_from"])
            for code, price in b["prices"].items():
                exists = s.scalar(
                    select(ledger.Price).where(
                        ledger.Price.bank_id == bank.id,
                        ledger.Price.category_id == categories[code].id,
                        ledger.Price.effective_from == since,
                    )
                )
                if exists is None:
                    s.add(
                        ledger.Price(
                            bank_id=bank.id,
                            category_id=categories[code].id,
                            price_per_kg_idr=int(price),
                            effective_from=since,
                        )
                    )
        members: dict[str, list[str]] = {}
        member_banks: dict[str, str] = {}
        for m in data["member"]:
            member = ledger.get_member(s, m["member_no"])
            if member is None:
                member = ledger.Member(
                    member_no=m["member_no"], name=m["name"], bank_id=banks[m["bank"]].id
                )
                s.add(member)
                s.flush()
            for uid in m["cards"]:
                if s.get(ledger.Card, uid) is None:
                    s.add(ledger.Card(uid=uid, member_id=member.id))
            members[m["member_no"]] = list(m["cards"])
            member_banks[m["member_no"]] = m["bank"]
        s.commit()
        return SeedSummary(
            city=city.name,
            timezone=city.timezone,
            banks=list(banks),
            members=members,
            member_banks=member_banks,
            categories=list(categories),
        )


def seed_demo(ledger_url: str | None = None) -> SeedSummary:
    engine = ledger.make_engine(ledger_url)
    try:
        return seed(engine, load_city())
    finally:
        engine.dispose()
