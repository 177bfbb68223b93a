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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Insert,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql.elements import ColumnElement

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
    flow: Mapped[str] = mapped_column(String(16), default="kiosk", server_default="kiosk")
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
    """A message the ingester could not apply, kept byte for byte for inspection and replay.

    ``error`` is why it was first rejected and never changes; a replay that fails again stores its
    reason in ``last_error`` and counts the attempt. A replay that succeeds sets ``replayed_at`` and
    keeps the row (the audit trail of what was rejected and when it was put right) until it is
    purged.
    """

    __tablename__ = "dead_letter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(500))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # Added after the first release: nullable or with a server default, so that
    # `_add_missing_columns` can add them to an existing ledger file.
    replay_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    replayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    @property
    def current_error(self) -> str:
        """The reason it is still (or was last) rejected."""
        return self.last_error or self.error


# ---- engine -----------------------------------------------------------------------------------


def make_engine(url: str | None = None, *, writer: bool = True) -> Engine:
    """An engine for ``url`` (default: the SQLite file under .run/), with the schema created.

    On SQLite, SQLAlchemy (not the driver) begins transactions, so savepoints work; a ``writer``
    engine begins them IMMEDIATE: it takes the write lock up front and waits for it (busy
    timeout) when another process holds it, instead of failing when it upgrades a read
    snapshot another writer has since changed ("database is locked"). Several ingesters on one
    SQLite ledger depend on this. Readers (the API) keep deferred transactions.
    """
    url = url or os.environ.get("WASTEBANK_LEDGER_URL") or default_ledger_url()
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Add columns a newer release declares to tables an older one created (no migrations yet).

    Only columns that are nullable or carry a server default can be added this way, which is how
    new columns are declared until the ledger gets real migrations. Idempotent; safe when several
    processes open the same ledger at once (a column another process just added is skipped).
    """
    existing = inspect(engine)
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have or not (column.nullable or column.server_default is not None):
                continue
            ddl = CreateColumn(column).compile(dialect=engine.dialect)
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))
            except (OperationalError, ProgrammingError):
                if column.name not in {c["name"] for c in inspect(engine).get_columns(table.name)}:
                    raise


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver begins nothing; SQLAlchemy's "begin" does
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
    """Apply ``ev`` once. Commits. A replay of an applied event returns a DUPLICATE outcome;
    a deposit that cannot be applied raises :class:`DepositRejected` and changes nothing."""
    (result,) = apply_deposits(session, [ev])
    if isinstance(result, DepositRejected):
        raise result
    return result


def apply_deposits(
    session: Session, events: Sequence[DepositEvent]
) -> list[AppliedDeposit | DepositRejected]:
    """Apply a batch in one transaction (one commit), each deposit exactly once by its event id.

    The result for each event, in order, is its outcome or its rejection; one that is rejected
    (unknown card, no price, ...) leaves the others applied. An event already in the ledger, or
    one seen earlier in the batch, is a DUPLICATE described as it was applied. Reference data
    (banks, cards, members, categories, prices) is read once per batch, the event ids already
    applied in one query per chunk; the deposits and their journal entries are then written with
    one multi-row INSERT each. A deposit another writer applied between our read and our write
    (the insert skips it on the unique event id) is reported DUPLICATE and gets no entries.
    """
    ref = _References(session)
    known = ref.applied([ev.event_id for ev in events])
    out: list[AppliedDeposit | DepositRejected] = []
    planned: dict[str, tuple[dict[str, Any], AppliedDeposit]] = {}
    for ev in events:
        if (done := known.get(ev.event_id)) is not None:
            out.append(done)
            continue
        if (earlier := planned.get(ev.event_id)) is not None:
            out.append(replace(earlier[1], outcome=Outcome.DUPLICATE))
            continue
        try:
            planned[ev.event_id] = plan = ref.plan(ev)
        except DepositRejected as rejected:
            out.append(rejected)
            continue
        out.append(plan[1])
    if planned:
        inserted = _insert_deposits(session, [row for row, _ in planned.values()])
        entries: list[dict[str, Any]] = []
        for event_id, (_, applied) in planned.items():
            if event_id in inserted:
                entries.extend(_journal_entries(applied))
        if entries:
            session.execute(insert(_JOURNAL), entries)
        lost = [event_id for event_id in planned if event_id not in inserted]
        if lost:
            # Another ingester applied these between our read and our write: its rows stand.
            winners = ref.applied(lost)
            if missing := [event_id for event_id in lost if event_id not in winners]:
                raise RuntimeError(f"deposits neither inserted nor found: {missing[:5]}")
            out = [winners.get(r.event_id, r) if isinstance(r, AppliedDeposit) else r for r in out]
    session.commit()
    return out


_DEPOSIT = cast(Table, Deposit.__table__)
_JOURNAL = cast(Table, JournalEntry.__table__)

# INSERT ... ON CONFLICT (event_id) DO NOTHING ... RETURNING event_id, by dialect. Any other
# dialect (or an SQLite without RETURNING) inserts row by row, each in a savepoint: correct, slow.
_ON_CONFLICT_INSERTS: dict[str, Callable[[Table], sqlite_dml.Insert | postgresql_dml.Insert]] = {
    "sqlite": sqlite_dml.insert,
    "postgresql": postgresql_dml.insert,
}


def _insert_skipping_applied(dialect: str) -> Insert | None:
    """``INSERT INTO deposit ... ON CONFLICT (event_id) DO NOTHING RETURNING event_id`` for
    ``dialect``, or None where it has no such statement."""
    make_insert = _ON_CONFLICT_INSERTS.get(dialect)
    if make_insert is None:
        return None
    return (
        make_insert(_DEPOSIT)
        .on_conflict_do_nothing(index_elements=[_DEPOSIT.c.event_id])
        .returning(_DEPOSIT.c.event_id)
    )


def _insert_deposits(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` into ``deposit``, skipping each whose event id is already there (a
    concurrent writer's); return the event ids actually inserted."""
    dialect = session.get_bind().dialect
    stmt = _insert_skipping_applied(dialect.name)
    if stmt is not None and dialect.insert_executemany_returning:  # SQLite >= 3.35
        return set(session.execute(stmt, rows).scalars())
    inserted: set[str] = set()
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(insert(_DEPOSIT), row)
        except IntegrityError:
            if session.scalar(select(Deposit.id).where(Deposit.event_id == row["event_id"])):
                continue  # another writer's: reported as a duplicate by the caller
            raise
        inserted.add(row["event_id"])
    return inserted


def _journal_entries(d: AppliedDeposit) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two legs of an applied deposit: the member is credited, the bank's purchases debited."""
    txn = f"deposit:{d.event_id}"
    memo = f"{d.category_code} {d.net_g} g @ Rp{d.price_per_kg_idr}/kg"
    return (
        {
            "txn_ref": txn,
            "account": member_account(d.member_no),
            "amount_idr": d.amount_idr,
            "memo": memo,
        },
        {
            "txn_ref": txn,
            "account": bank_purchase_account(d.bank_code),
            "amount_idr": -d.amount_idr,
            "memo": memo,
        },
    )


_CHUNK = 500  # event ids per IN (...) query


class _References:
    """The reference rows one batch needs, each read once."""

    def __init__(self, session: Session) -> None:
        self.s = session
        self.banks: dict[str, Bank | None] = {}
        self.cards: dict[str, Member | None] = {}
        self.members: dict[str, Member | None] = {}
        self.categories: dict[str, Category | None] = {}
        self.prices: dict[tuple[int, int], list[tuple[datetime, int]]] = {}

    def applied(self, event_ids: Sequence[str]) -> dict[str, AppliedDeposit]:
        """The deposits among ``event_ids`` already in the ledger, described as DUPLICATEs."""
        ids = list(dict.fromkeys(event_ids))
        found: dict[str, AppliedDeposit] = {}
        for start in range(0, len(ids), _CHUNK):
            stmt = (
                select(
                    Deposit.event_id,
                    Member.member_no,
                    Bank.code,
                    Bank.kecamatan,
                    Category.code,
                    Deposit.net_g,
                    Deposit.amount_idr,
                    Deposit.price_per_kg_idr,
                )
                .select_from(Deposit)
                .join(Member, Deposit.member_id == Member.id)
                .join(Bank, Deposit.bank_id == Bank.id)
                .join(Category, Deposit.category_id == Category.id)
                .where(Deposit.event_id.in_(ids[start : start + _CHUNK]))
            )
            for row in self.s.execute(stmt):
                found[row[0]] = AppliedDeposit(Outcome.DUPLICATE, *row)
        return found

    def bank(self, code: str) -> Bank | None:
        if code not in self.banks:
            self.banks[code] = self.s.scalar(select(Bank).where(Bank.code == code))
        return self.banks[code]

    def category(self, code: str) -> Category | None:
        if code not in self.categories:
            self.categories[code] = self.s.scalar(select(Category).where(Category.code == code))
        return self.categories[code]

    def depositor(self, ev: DepositEvent) -> Member:
        if ev.card_uid is not None:
            if ev.card_uid not in self.cards:
                card = self.s.get(Card, ev.card_uid)
                self.cards[ev.card_uid] = card.member if card else None
            member = self.cards[ev.card_uid]
            if member is None:
                raise DepositRejected(f"unknown card {ev.card_uid!r}")
            return member
        no = ev.member_no or ""
        if no not in self.members:
            self.members[no] = get_member(self.s, no)
        found = self.members[no]
        if found is None:
            raise DepositRejected(f"unknown member {ev.member_no!r}")
        return found

    def price(self, bank: Bank, category: Category, at: datetime) -> int | None:
        key = (bank.id, category.id)
        if key not in self.prices:
            rows = self.s.execute(
                select(Price.effective_from, Price.price_per_kg_idr)
                .where(Price.bank_id == bank.id, Price.category_id == category.id)
                .order_by(Price.effective_from.desc())
            ).all()
            self.prices[key] = [(r[0], int(r[1])) for r in rows]
        return next((p for since, p in self.prices[key] if since <= at), None)

    def plan(self, ev: DepositEvent) -> tuple[dict[str, Any], AppliedDeposit]:
        """The ``deposit`` row for ``ev`` and its APPLIED outcome, or :class:`DepositRejected`."""
        bank = self.bank(ev.bank_code)
        if bank is None:
            raise DepositRejected(f"unknown bank {ev.bank_code!r}")
        member = self.depositor(ev)
        if member.bank_id != bank.id:
            who = f"card {ev.card_uid}" if ev.card_uid else f"member {ev.member_no}"
            raise DepositRejected(f"{who} belongs to member {member.member_no} of another bank")
        category = self.category(ev.category_code)
        if category is None:
            raise DepositRejected(f"unknown category {ev.category_code!r}")
        price = self.price(bank, category, ev.measured_at)
        if price is None:
            raise DepositRejected(
                f"bank {bank.code} has no price for {category.code} at {ev.measured_at.isoformat()}"
            )
        amount = amount_for(ev.net_g, price)
        row = {
            "event_id": ev.event_id,
            "member_id": member.id,
            "bank_id": bank.id,
            "category_id": category.id,
            "net_g": ev.net_g,
            "tare_g": ev.tare_g,
            "price_per_kg_idr": price,
            "amount_idr": amount,
            "measured_at": ev.measured_at,
            "gateway_id": ev.gateway_id,
            "scale_id": ev.scale_id,
            "protocol": ev.protocol,
            "stable": ev.stable,
            "raw_frames": json.dumps(ev.raw_frames),
            "flow": ev.flow,
            "calibration_version": ev.calibration_version,
        }
        applied = AppliedDeposit(
            outcome=Outcome.APPLIED,
            event_id=ev.event_id,
            member_no=member.member_no,
            bank_code=bank.code,
            kecamatan=bank.kecamatan,
            category_code=category.code,
            net_g=ev.net_g,
            amount_idr=amount,
            price_per_kg_idr=price,
        )
        return row, applied


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


def add_dead_letters(session: Session, rows: Sequence[tuple[str, bytes, str]]) -> None:
    """Store (topic, raw payload, error) rows in one transaction."""
    session.add_all(DeadLetter(topic=t, payload=p, error=e[:4000]) for t, p, e in rows)
    session.commit()


def add_dead_letter(session: Session, topic: str, payload: bytes, error: str) -> int:
    row = DeadLetter(topic=topic, payload=payload, error=error[:4000])
    session.add(row)
    session.commit()
    return row.id


def dead_letters(
    session: Session,
    limit: int | None = 1000,
    *,
    topic_contains: str | None = None,
    since: datetime | None = None,
    replayed: bool | None = None,
    ids: Sequence[int] | None = None,
    newest_first: bool = False,
) -> list[DeadLetter]:
    """Dead letters, oldest (or newest) first, filtered by each criterion that is given."""
    stmt = select(DeadLetter).order_by(DeadLetter.id.desc() if newest_first else DeadLetter.id)
    if topic_contains:
        stmt = stmt.where(DeadLetter.topic.contains(topic_contains, autoescape=True))
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    if replayed is not None:
        stmt = stmt.where(
            DeadLetter.replayed_at.is_not(None) if replayed else DeadLetter.replayed_at.is_(None)
        )
    if ids is not None:
        stmt = stmt.where(DeadLetter.id.in_(list(ids)))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def get_dead_letter(session: Session, dead_letter_id: int) -> DeadLetter | None:
    return session.get(DeadLetter, dead_letter_id)


def mark_replayed(session: Session, ids: Sequence[int], at: datetime | None = None) -> None:
    """Record that the dead letters ``ids`` were applied by a replay. Commits."""
    if not ids:
        return
    at = at or utcnow()
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.id.in_(list(ids)))
        .values(
            replayed_at=at,
            last_attempt_at=at,
            replay_attempts=DeadLetter.replay_attempts + 1,
        )
    )
    session.commit()


def record_replay_failure(
    session: Session, dead_letter_id: int, error: str, at: datetime | None = None
) -> None:
    """Record that replaying ``dead_letter_id`` failed again, and why. Commits."""
    at = at or utcnow()
    session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == dead_letter_id)
        .values(
            last_error=error[:4000],
            last_attempt_at=at,
            replay_attempts=DeadLetter.replay_attempts + 1,
        )
    )
    session.commit()


def purge_dead_letters(
    session: Session,
    *,
    replayed: bool = False,
    before: datetime | None = None,
    dry_run: bool = False,
) -> int:
    """Delete replayed dead letters and/or those received before ``before``; return how many
    (with ``dry_run``: how many would be deleted, deleting nothing).

    With both criteria a row must meet both. With neither, nothing is deleted (ValueError):
    emptying the table is never a default. Commits.
    """
    if not replayed and before is None:
        raise ValueError("purge needs replayed=True and/or before=")
    criteria: list[ColumnElement[bool]] = []
    if replayed:
        criteria.append(DeadLetter.replayed_at.is_not(None))
    if before is not None:
        criteria.append(DeadLetter.received_at < before)
    if dry_run:
        return session.scalar(select(func.count()).select_from(DeadLetter).where(*criteria)) or 0
    stmt = delete(DeadLetter).where(*criteria)
    result = session.execute(stmt, execution_options={"synchronize_session": False})
    count = result.rowcount if isinstance(result, CursorResult) else 0
    session.commit()
    return count
