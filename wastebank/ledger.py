"""The ledger: cities, banks, members, cards, categories, prices, deposits, a double-entry journal.

SQLite by default (SQLAlchemy 2), PostgreSQL for multi-node. Money is integer Rupiah, weights are
integer grams, timestamps are stored in UTC and always returned with a time zone.

A deposit is applied exactly once by its ``event_id`` (unique constraint; a replay is reported as a
duplicate, never applied twice) and priced at the bank's price in force at ``measured_at``. Each
applied deposit writes two journal entries that sum to zero: the member's account is credited and
the bank's waste-purchase account is debited. Balances are sums of entries, never stored.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from wastebank.config import default_ledger_url
from wastebank.messages import DepositEvent

__all__ = ["Session"]


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; returns them aware (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; attach a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class City(Base):
    __tablename__ = "city"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), doc="IANA zone, e.g. Asia/Jayapura (WIT)")


class Bank(Base):
    __tablename__ = "bank"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city_id: Mapped[int] = mapped_column(ForeignKey("city.id"))
    kecamatan: Mapped[str] = mapped_column(String(100))
    kelurahan: Mapped[str] = mapped_column(String(100))
    city: Mapped[City] = relationship()


class Member(Base):
    __tablename__ = "member"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    bank: Mapped[Bank] = relationship()


class Card(Base):
    __tablename__ = "card"
    uid: Mapped[str] = mapped_column(String(20), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    member: Mapped[Member] = relationship()


class Category(Base):
    __tablename__ = "category"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_id: Mapped[str] = mapped_column(String(100), doc="Bahasa Indonesia name")
    name_en: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(8), default="kg")


class Price(Base):
    """A bank's buying price for a category, in force from ``effective_from`` until superseded."""

    __tablename__ = "price"
    __table_args__ = (UniqueConstraint("bank_id", "category_id", "effective_from"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    price_per_kg_idr: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime)


class Deposit(Base):
    __tablename__ = "deposit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(100), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    net_g: Mapped[int] = mapped_column(BigInteger)
    tare_g: Mapped[int] = mapped_column(BigInteger, default=0)
    price_per_kg_idr: Mapped[int] = mapped_column(BigInteger)
    amount_idr: Mapped[int] = mapped_column(BigInteger)
    measured_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    gateway_id: Mapped[str] = mapped_column(String(64))
    scale_id: Mapped[str] = mapped_column(String(64))
    protocol: Mapped[str] = mapped_column(String(32))
    stable: Mapped[bool] = mapped_column(Boolean)
    raw_frames: Mapped[str] = mapped_column(Text, default="[]", doc="JSON list: the evidence")
    flow: Mapped[str] = mapped_column(String(16), default="kiosk")
    calibration_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    member: Mapped[Member] = relationship()
    category: Mapped[Category] = relationship()
    bank: Mapped[Bank] = relationship()


class JournalEntry(Base):
    """One leg of a balanced transaction: the amounts of one ``txn_ref`` sum to zero.

    ``amount_idr`` > 0 raises the account's balance (for a member: what the bank owes them).
    """

    __tablename__ = "journal_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txn_ref: Mapped[str] = mapped_column(String(120), index=True)
    account: Mapped[str] = mapped_column(String(120), index=True)
    amount_idr: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    memo: Mapped[str] = mapped_column(String(200), default="")


class DeadLetter(Base):
    """A message the ingester could not apply, kept byte for byte for inspection and replay."""

    __tablename__ = "dead_letter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(500))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


# ---- engine -----------------------------------------------------------------------------------


def make_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default: the SQLite file under .run/), with the schema created."""
    url = url or os.environ.get("WASTEBANK_LEDGER_URL") or default_ledger_url()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    Base.metadata.create_all(engine)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


# ---- deposits ---------------------------------------------------------------------------------


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"


class DepositRejected(Exception):
    """The deposit is well-formed but cannot be applied (unknown card, no price, ...)."""


@dataclass(frozen=True)
class AppliedDeposit:
    outcome: Outcome
    event_id: str
    member_no: str
    bank_code: str
    kecamatan: str
    category_code: str
    net_g: int
    amount_idr: int
    price_per_kg_idr: int


def amount_for(net_g: int, price_per_kg_idr: int) -> int:
    """Integer Rupiah for ``net_g`` grams at ``price_per_kg_idr``, rounded half up."""
    return (net_g * price_per_kg_idr + 500) // 1000


def price_in_force(session: Session, bank_id: int, category_id: int, at: datetime) -> int | None:
    stmt = (
        select(Price.price_per_kg_idr)
        .where(Price.bank_id == bank_id, Price.category_id == category_id)
        .where(Price.effective_from <= at)
        .order_by(Price.effective_from.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def member_account(member_no: str) -> str:
    return f"member:{member_no}"


def bank_purchase_account(bank_code: str) -> str:
    return f"bank:{bank_code}:waste_purchases"


def apply_deposit(session: Session, ev: DepositEvent) -> AppliedDeposit:
    """Apply ``ev`` once. Commits. A replay of an applied event returns a DUPLICATE outcome."""
    existing = session.scalar(select(Deposit).where(Deposit.event_id == ev.event_id))
    if existing is not None:
        return _describe(existing, Outcome.DUPLICATE)

    bank = session.scalar(select(Bank).where(Bank.code == ev.bank_code))
    if bank is None:
        raise DepositRejected(f"unknown bank {ev.bank_code!r}")
    member = _depositor(session, ev)
    if member.bank_id != bank.id:
        who = f"card {ev.card_uid}" if ev.card_uid else f"member {ev.member_no}"
        raise DepositRejected(f"{who} belongs to member {member.member_no} of another bank")
    category = session.scalar(select(Category).where(Category.code == ev.category_code))
    if category is None:
        raise DepositRejected(f"unknown category {ev.category_code!r}")
    price = price_in_force(session, bank.id, category.id, ev.measured_at)
    if price is None:
        raise DepositRejected(
            f"bank {bank.code} has no price for {category.code} at {ev.measured_at.isoformat()}"
        )

    amount = amount_for(ev.net_g, price)
    deposit = Deposit(
        event_id=ev.event_id,
        member_id=member.id,
        bank_id=bank.id,
        category_id=category.id,
        net_g=ev.net_g,
        tare_g=ev.tare_g,
        price_per_kg_idr=price,
        amount_idr=amount,
        measured_at=ev.measured_at,
        gateway_id=ev.gateway_id,
        scale_id=ev.scale_id,
        protocol=ev.protocol,
        stable=ev.stable,
        raw_frames=json.dumps(ev.raw_frames),
        flow=ev.flow,
        calibration_version=ev.calibration_version,
    )
    txn = f"deposit:{ev.event_id}"
    memo = f"{category.code} {ev.net_g} g @ Rp{price}/kg"
    session.add(deposit)
    session.add(
        JournalEntry(
            txn_ref=txn, account=member_account(member.member_no), amount_idr=amount, memo=memo
        )
    )
    session.add(
        JournalEntry(
            txn_ref=txn, account=bank_purchase_account(bank.code), amount_idr=-amount, memo=memo
        )
    )
    try:
        session.commit()
    except IntegrityError:
        # Another ingester applied the same event between our check and our commit.
        session.rollback()
        winner = session.scalar(select(Deposit).where(Deposit.event_id == ev.event_id))
        if winner is None:
            raise
        return _describe(winner, Outcome.DUPLICATE)
    return _describe(deposit, Outcome.APPLIED)


def _depositor(session: Session, ev: DepositEvent) -> Member:
    if ev.card_uid is not None:
        card = session.get(Card, ev.card_uid)
        if card is None:
            raise DepositRejected(f"unknown card {ev.card_uid!r}")
        return card.member
    member = get_member(session, ev.member_no or "")
    if member is None:
        raise DepositRejected(f"unknown member {ev.member_no!r}")
    return member


def _describe(deposit: Deposit, outcome: Outcome) -> AppliedDeposit:
    return AppliedDeposit(
        outcome=outcome,
        event_id=deposit.event_id,
        member_no=deposit.member.member_no,
        bank_code=deposit.bank.code,
        kecamatan=deposit.bank.kecamatan,
        category_code=deposit.category.code,
        net_g=deposit.net_g,
        amount_idr=deposit.amount_idr,
        price_per_kg_idr=deposit.price_per_kg_idr,
    )


# ---- reading ----------------------------------------------------------------------------------


def member_balance(session: Session, member_no: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(JournalEntry.amount_idr), 0)).where(
            JournalEntry.account == member_account(member_no)
        )
    )
    return int(total or 0)


def get_member(session: Session, member_no: str) -> Member | None:
    return session.scalar(select(Member).where(Member.member_no == member_no))


def member_deposits(session: Session, member_no: str, limit: int = 100) -> list[Deposit]:
    stmt = (
        select(Deposit)
        .join(Member)
        .where(Member.member_no == member_no)
        .order_by(Deposit.measured_at.desc(), Deposit.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def city_of_bank(session: Session, bank_code: str) -> City | None:
    bank = session.scalar(select(Bank).where(Bank.code == bank_code))
    return bank.city if bank else None


def first_city(session: Session) -> City | None:
    return session.scalar(select(City).order_by(City.id).limit(1))


def journal_is_balanced(session: Session) -> bool:
    """Every transaction's legs sum to zero."""
    stmt = (
        select(JournalEntry.txn_ref)
        .group_by(JournalEntry.txn_ref)
        .having(func.sum(JournalEntry.amount_idr) != 0)
        .limit(1)
    )
    return session.scalar(stmt) is None


# ---- dead letters -----------------------------------------------------------------------------


def add_dead_letter(session: Session, topic: str, payload: bytes, error: str) -> int:
    row = DeadLetter(topic=topic, payload=payload, error=error[:4000])
    session.add(row)
    session.commit()
    return row.id


def dead_letters(session: Session, limit: int = 1000) -> list[DeadLetter]:
    return list(session.scalars(select(DeadLetter).order_by(DeadLetter.id).limit(limit)))
