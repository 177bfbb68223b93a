"""Seed a city from a TOML file (the demo city by default). Idempotent: existing rows are kept."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.config import load_settings

DEMO_CITY = Path(__file__).parent / "data" / "demo_city.toml"


@dataclass(frozen=True)
class SeedSummary:
    city: str
    timezone: str
    banks: list[str]
    members: dict[str, list[str]]  # member_no -> card uids
    member_banks: dict[str, str]  # member_no -> bank code
    categories: list[str]
    tps: list[str] = field(default_factory=list)  # TPS codes

    def __str__(self) -> str:
        return (
            f"{self.city} ({self.timezone}): {len(self.banks)} bank sampah, "
            f"{len(self.members)} nasabah, {len(self.categories)} jenis sampah, {len(self.tps)} TPS"
        )


def load_city(path: Path = DEMO_CITY) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def seed(engine: Engine, data: dict[str, Any]) -> SeedSummary:
    """Create what ``data`` describes and is not in the ledger yet (matched by code, name or
    number); rows already there are kept as they are."""
    with Session(engine) as s:
        city = _seed_city(s, data["city"])
        areas = _seed_areas(s, city, data.get("kecamatan", []))
        categories = _seed_categories(s, data["category"])
        banks = _seed_banks(s, data["bank"], areas, categories)
        _seed_collectors(s, city, data.get("collector", []))
        tps = _seed_tps(s, city, areas, data.get("tps", []))
        members, member_banks = _seed_members(s, data["member"], banks, areas)
        s.commit()
        return SeedSummary(
            city=city.name,
            timezone=city.timezone,
            banks=list(banks),
            members=members,
            member_banks=member_banks,
            categories=list(categories),
            tps=tps,
        )


def _seed_city(s: Session, c: dict[str, Any]) -> ledger.City:
    city = s.scalar(select(ledger.City).where(ledger.City.code == c["code"]))
    if city is None:
        city = ledger.City(code=c["code"], name=c["name"], timezone=c["timezone"])
        s.add(city)
        s.flush()
    return city


def _seed_categories(s: Session, rows: list[dict[str, Any]]) -> dict[str, ledger.Category]:
    """The waste categories, by code."""
    categories: dict[str, ledger.Category] = {}
    for cat in rows:
        row = s.scalar(select(ledger.Category).where(ledger.Category.code == cat["code"]))
        if row is None:
            row = ledger.Category(
                code=cat["code"],
                name_id=cat["name_id"],
                name_en=cat["name_en"],
                unit=ledger.Unit(cat.get("unit", "kg")),
                sipsn_class=ledger.SipsnClass(cat.get("sipsn_class", "lainnya")),
                material_class=ledger.MaterialClass(cat.get("material_class", "other")),
            )
            s.add(row)
            s.flush()
        categories[cat["code"]] = row
    return categories


def _seed_banks(
    s: Session,
    rows: list[dict[str, Any]],
    areas: dict[tuple[str, str], ledger.Kelurahan],
    categories: dict[str, ledger.Category],
) -> dict[str, ledger.Bank]:
    """The waste banks (an induk comes before its units), their attendants and prices, by
    code."""
    banks: dict[str, ledger.Bank] = {}
    for b in rows:
        bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == b["code"]))
        if bank is None:
            bank = ledger.create_bank(
                s,
                code=b["code"],
                name=b["name"],
                kelurahan=areas[b["kecamatan"], b["kelurahan"]],
                kind=ledger.BankKind(b.get("kind", "unit")),
                parent=banks[b["parent"]] if "parent" in b else None,
                use_parent_price=bool(b.get("use_parent_price", False)),
                min_withdrawal_idr=int(b.get("min_withdrawal_idr", 0)),
            )
        banks[b["code"]] = bank
        _seed_attendants(s, bank, b.get("attendants", []))
        if "prices" in b:
            _seed_prices(s, bank, b, categories)
    return banks


def _seed_attendants(s: Session, bank: ledger.Bank, rows: list[dict[str, Any]]) -> None:
    for a in rows:
        if (
            s.scalar(
                select(ledger.Attendant).where(
                    ledger.Attendant.bank_id == bank.id,
                    ledger.Attendant.staff_id == a["staff_id"],
                )
            )
            is None
        ):
            ledger.create_attendant(s, bank, a["staff_id"], a["name"])


def _seed_prices(
    s: Session, bank: ledger.Bank, b: dict[str, Any], categories: dict[str, ledger.Category]
) -> None:
    """A bank's prices in force from its ``effective_from``."""
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
                    created_by="seed",
                )
            )


def _seed_collectors(s: Session, city: ledger.City, rows: list[dict[str, Any]]) -> None:
    for col in rows:
        if s.scalar(select(ledger.Collector).where(ledger.Collector.code == col["code"])):
            continue
        ledger.create_collector(s, col["code"], col["name"], col.get("phone"), city)


def _seed_members(
    s: Session,
    rows: list[dict[str, Any]],
    banks: dict[str, ledger.Bank],
    areas: dict[tuple[str, str], ledger.Kelurahan],
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The members and their cards; each member's card uids and bank, by member number."""
    members: dict[str, list[str]] = {}
    member_banks: dict[str, str] = {}
    nik_key: bytes | None = None
    for m in rows:
        member = ledger.get_member(s, m["member_no"])
        bank = banks[m["bank"]]
        if member is None:
            if "nik" in m and nik_key is None:
                nik_key = load_settings(ledger.MemberPrivacySettings).key()
            kecamatan = m.get("kecamatan") or _kecamatan_of(areas, bank)
            member = ledger.create_member(
                s,
                bank=bank,
                member_no=m["member_no"],
                name=m["name"],
                kind=ledger.MemberKind(m.get("kind", "individual")),
                phone=m.get("phone"),
                kelurahan=areas[kecamatan, m["kelurahan"]] if "kelurahan" in m else None,
                rt=m.get("rt"),
                rw=m.get("rw"),
                nik=m.get("nik"),
                nik_key=nik_key,
            )
        for uid in m["cards"]:
            if s.get(ledger.Card, uid) is None:
                s.add(ledger.Card(uid=uid, member_id=member.id))
        members[m["member_no"]] = list(m["cards"])
        member_banks[m["member_no"]] = m["bank"]
    return members, member_banks


def _seed_areas(
    s: Session, city: ledger.City, rows: list[dict[str, Any]]
) -> dict[tuple[str, str], ledger.Kelurahan]:
    """The city's kecamatan and their kelurahan/desa, by (kecamatan, kelurahan) name."""
    out: dict[tuple[str, str], ledger.Kelurahan] = {}
    for k in rows:
        kecamatan = s.scalar(
            select(ledger.Kecamatan).where(
                ledger.Kecamatan.city_id == city.id, ledger.Kecamatan.name == k["name"]
            )
        )
        if kecamatan is None:
            kecamatan = ledger.Kecamatan(city_id=city.id, name=k["name"])
            s.add(kecamatan)
            s.flush()
        named = [(n, ledger.AreaKind.KELURAHAN) for n in k.get("kelurahan", [])]
        named += [(n, ledger.AreaKind.DESA) for n in k.get("desa", [])]
        for name, kind in named:
            row = s.scalar(
                select(ledger.Kelurahan).where(
                    ledger.Kelurahan.kecamatan_id == kecamatan.id, ledger.Kelurahan.name == name
                )
            )
            if row is None:
                row = ledger.Kelurahan(kecamatan_id=kecamatan.id, name=name, kind=kind)
                s.add(row)
                s.flush()
            out[k["name"], name] = row
    return out


def _seed_tps(
    s: Session,
    city: ledger.City,
    areas: dict[tuple[str, str], ledger.Kelurahan],
    rows: list[dict[str, Any]],
) -> list[str]:
    """The city's TPS (``[[tps]]``), by code; existing ones are kept as they are (a density
    calibrated since is not overwritten)."""
    for t in rows:
        if s.scalar(select(ledger.Tps).where(ledger.Tps.code == t["code"])) is not None:
            continue
        kelurahan = areas[t["kecamatan"], t["kelurahan"]] if "kelurahan" in t else None
        s.add(
            ledger.Tps(
                code=t["code"],
                name=t["name"],
                city_id=city.id,
                kelurahan_id=kelurahan.id if kelurahan else None,
                lat=t.get("lat"),
                lon=t.get("lon"),
                container_volume_m3=float(t["container_volume_m3"]),
                container_count=int(t.get("container_count", 1)),
                density_kg_m3=float(t["density_kg_m3"]),
                density_source=t["density_source"],
                alert_raise_fill=float(t.get("alert_raise_fill", 0.8)),
                alert_clear_fill=float(t.get("alert_clear_fill", 0.6)),
                offline_after_min=int(t.get("offline_after_min", 60)),
            )
        )
    s.flush()
    return [t["code"] for t in rows]


def _kecamatan_of(areas: dict[tuple[str, str], ledger.Kelurahan], bank: ledger.Bank) -> str:
    return next(kec for (kec, _), kel in areas.items() if kel.id == bank.kelurahan_id)


def seed_demo(ledger_url: str | None = None) -> SeedSummary:
    engine = ledger.make_engine(ledger_url)
    try:
        return seed(engine, load_city())
    finally:
        engine.dispose()
