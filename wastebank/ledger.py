"""The ledger: cities, banks, members, cards, categories, prices, deposits, a double-entry journal.

SQLite by default (SQLAlchemy 2), PostgreSQL for multi-node. Money is integer Rupiah, weights are
integer grams, timestamps are stored in UTC and always returned with a time zone.

A deposit is applied exactly once by its ``event_id`` (unique constraint; a replay is reported as a
duplicate, never applied twice) and priced at the bank's price in force at ``measured_at``. Each
applied deposit writes two journal entries that sum to zero: the member's account is credited and
the bank's waste-purchase account is debited. Balances are sums of entries, never stored.

Beside the money journal (integer Rupiah) there is a stock journal (integer grams per category):
a deposit puts its weight into the bank's stock; sales to a pengepul, transfers from a unit to its
induk, and residue or burned waste take it out. Nothing is edited or deleted: a wrong deposit is
voided by reversal entries (and, for a correction, replaced by a new deposit). :func:`verify`
recomputes every entry from the documents (deposits, voids, withdrawals, stock movements) and
reports any difference, any unbalanced transaction and any negative balance or stock.

Functions that add reference data (``create_*``) flush and leave the commit to the caller;
operations on money or stock (manual deposits, voids, prices, withdrawals, stock movements)
commit, because their checks hold only under the locks of their own transaction (see
:func:`request_withdrawal`), and roll back whatever they wrote when they refuse.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Insert,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    select,
    text,
    true,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import URL, CursorResult, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
)
from sqlalchemy.sql.elements import ColumnElement

from wastebank.config import (
    WastebankSettings,
    default_ledger_url,
    local_postgresql_password_file,
    read_secret,
)
from wastebank.messages import DepositEvent
from wastebank.money_rules import DEFAULT_RULES, Breach, CityRules, MoneyRules, amount_for

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


# Constraint names as PostgreSQL itself chooses them, on every database: a PostgreSQL ledger
# from before migrations (unnamed constraints) has these names already, and migrations on SQLite
# (which copy the table) can name the constraint they change.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class City(Base):
    __tablename__ = "city"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), doc="IANA zone, e.g. Asia/Jayapura (WIT)")


class Kecamatan(Base):
    """A district of a city. Its name is the ``kecamatan`` tag of every InfluxDB deposit point."""

    __tablename__ = "kecamatan"
    __table_args__ = (UniqueConstraint("city_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("city.id"))
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="Kemendagri code")
    city: Mapped[City] = relationship()


class AreaKind(StrEnum):
    KELURAHAN = "kelurahan"  # urban village, headed by a civil servant (lurah)
    DESA = "desa"  # village (in Maluku often a negeri adat, e.g. Batu Merah), headed by its own


class Kelurahan(Base):
    """A kelurahan or desa (the level below the kecamatan): where banks and members are."""

    __tablename__ = "kelurahan"
    __table_args__ = (UniqueConstraint("kecamatan_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kecamatan_id: Mapped[int] = mapped_column(ForeignKey("kecamatan.id"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(
        String(16), default=AreaKind.KELURAHAN, server_default=AreaKind.KELURAHAN
    )
    code: Mapped[str | None] = mapped_column(String(16), nullable=True, doc="Kemendagri code")
    kecamatan: Mapped[Kecamatan] = relationship()


class BankKind(StrEnum):
    """PermenLHK 14/2021: a bank sampah induk (BSI) buys sorted waste from the units under it and
    sells it on; a bank sampah unit (BSU) serves nasabah, under an induk or on its own."""

    INDUK = "induk"
    UNIT = "unit"


class Bank(Base):
    """A waste bank. A unit may sit under an induk (``parent_id``) and may buy at its induk's
    prices (``use_parent_price``): its deposits are then priced by the induk's list."""

    __tablename__ = "bank"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city_id: Mapped[int] = mapped_column(ForeignKey("city.id"))
    kelurahan_id: Mapped[int] = mapped_column(ForeignKey("kelurahan.id"))
    kind: Mapped[str] = mapped_column(
        String(8), default=BankKind.UNIT, server_default=BankKind.UNIT
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("bank.id"), nullable=True, index=True)
    use_parent_price: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    min_withdrawal_idr: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    city: Mapped[City] = relationship()
    kelurahan: Mapped[Kelurahan] = relationship()
    parent: Mapped[Bank | None] = relationship(remote_side="Bank.id")

    @property
    def kecamatan(self) -> str:
        """The kecamatan's name (the InfluxDB tag). Loads two rows unless they are loaded already:
        the ingester loads them with the bank (see ``_References.bank``)."""
        return self.kelurahan.kecamatan.name

    @property
    def price_bank_id(self) -> int:
        """The bank whose price list prices this bank's deposits: its induk's, or its own."""
        if self.use_parent_price and self.parent_id is not None:
            return self.parent_id
        return self.id


class Attendant(Base):
    """A petugas who works at a bank: the hook between the ledger and staff accounts.

    ``staff_id`` is the staff user's id in the login system (designed separately; the ledger
    never authenticates anyone). Every manual entry, void, price change, withdrawal decision and
    stock movement names its ``author``, and :func:`require_attendant` checks that the author is
    an active attendant of the bank concerned or of its induk. Attendants are deactivated, never
    deleted, so the authors of old entries stay known.
    """

    __tablename__ = "attendant"
    __table_args__ = (UniqueConstraint("bank_id", "staff_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    staff_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    bank: Mapped[Bank] = relationship()


class MemberKind(StrEnum):
    INDIVIDUAL = "individual"  # perorangan
    GROUP = "group"  # kelompok: PKK, RT, karang taruna, majelis taklim
    INSTITUTION = "institution"  # lembaga / badan: school, office, mosque, company


class Member(Base):
    """A nasabah: a person, a group or an institution saving at one bank.

    The NIK (national identity number) is never stored: only ``nik_hash``, a keyed hash (see
    :func:`hash_nik`), so that the same person can be found when registered twice.
    """

    __tablename__ = "member"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    kind: Mapped[str] = mapped_column(
        String(16), default=MemberKind.INDIVIDUAL, server_default=MemberKind.INDIVIDUAL
    )
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kelurahan_id: Mapped[int | None] = mapped_column(ForeignKey("kelurahan.id"), nullable=True)
    rt: Mapped[str | None] = mapped_column(String(3), nullable=True, doc="rukun tetangga, '002'")
    rw: Mapped[str | None] = mapped_column(String(3), nullable=True, doc="rukun warga, '005'")
    nik_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    bank: Mapped[Bank] = relationship()
    kelurahan: Mapped[Kelurahan | None] = relationship()


class Card(Base):
    __tablename__ = "card"
    uid: Mapped[str] = mapped_column(String(20), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    member: Mapped[Member] = relationship()


class Unit(StrEnum):
    """What a category is counted in. Deposits always carry a weight in grams (stock and tonnage
    are in grams); a piece or litre category also carries its count (pieces or millilitres),
    and that is what it is priced by."""

    KG = "kg"
    PIECE = "piece"
    LITRE = "litre"


class SipsnClass(StrEnum):
    """The composition classes of SIPSN (KLHK), to roll categories up for DLH reports."""

    SISA_MAKANAN = "sisa_makanan"  # food waste
    KAYU_RANTING = "kayu_ranting"  # wood, twigs, leaves
    KERTAS_KARTON = "kertas_karton"  # paper, cardboard
    PLASTIK = "plastik"
    LOGAM = "logam"  # metal
    KAIN = "kain"  # textile
    KARET_KULIT = "karet_kulit"  # rubber, leather
    KACA = "kaca"  # glass
    LAINNYA = "lainnya"  # other


class MaterialClass(StrEnum):
    """The material, as emission and energy factors are given per material (US EPA WARM names
    for recyclables; IPCC DOC classes for organics). See shared/domain/estimation-methods.md."""

    PET = "pet"
    HDPE = "hdpe"
    PP = "pp"
    LDPE = "ldpe"  # film, kresek
    MIXED_PLASTIC = "mixed_plastic"
    CORRUGATED = "corrugated"  # kardus
    OFFICE_PAPER = "office_paper"  # HVS
    NEWSPAPER = "newspaper"
    MIXED_PAPER = "mixed_paper"
    ALUMINIUM = "aluminium"
    STEEL = "steel"  # tin cans, besi
    COPPER = "copper"
    GLASS = "glass"
    TEXTILE = "textile"
    RUBBER_LEATHER = "rubber_leather"
    WOOD = "wood"
    FOOD = "food"
    YARD = "yard"
    COOKING_OIL = "cooking_oil"  # minyak jelantah (biodiesel feedstock)
    OTHER = "other"


class Category(Base):
    __tablename__ = "category"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_id: Mapped[str] = mapped_column(String(100), doc="Bahasa Indonesia name")
    name_en: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(8), default=Unit.KG)
    sipsn_class: Mapped[str] = mapped_column(
        String(16), default=SipsnClass.LAINNYA, server_default=SipsnClass.LAINNYA
    )
    material_class: Mapped[str] = mapped_column(
        String(24), default=MaterialClass.OTHER, server_default=MaterialClass.OTHER
    )


class Price(Base):
    """A bank's buying price for a category, in force from ``effective_from`` until superseded.

    ``price_per_kg_idr`` is per the category's unit: per kg, per piece or per litre (the name is
    kept from when every category was sold by weight; the API and the deposit rows carry it).
    """

    __tablename__ = "price"
    __table_args__ = (UniqueConstraint("bank_id", "category_id", "effective_from"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    price_per_kg_idr: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Deposit(Base):
    __tablename__ = "deposit"
    __table_args__ = (UniqueConstraint("author", "idempotency_key"),)
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
    # A piece or litre category's count (pieces, millilitres); None for kg (net_g is the count).
    quantity: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Entered by an attendant (scale down, or a correction), not measured: who and why.
    manual: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    author: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A manual deposit's retry key, chosen by the client (migration 0009): the id itself is the
    # server's (``M-...``), so that no client can take an id a device will use.
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    member: Mapped[Member] = relationship()
    category: Mapped[Category] = relationship()
    bank: Mapped[Bank] = relationship()


class JournalEntry(Base):
    """One leg of a balanced transaction: the amounts of one ``txn_ref`` sum to zero.

    ``amount_idr`` > 0 is a credit, < 0 a debit. A member's account is what the bank owes them
    (credits raise it); the bank's waste purchases and its funds (cash, bank account) are debit
    accounts, so their sums are negative: a payout credits funds, a sale's revenue debits them.
    """

    __tablename__ = "journal_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txn_ref: Mapped[str] = mapped_column(String(120), index=True)
    account: Mapped[str] = mapped_column(String(120), index=True)
    amount_idr: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    memo: Mapped[str] = mapped_column(String(200), default="")


class DepositVoid(Base):
    """The reversal of a deposit, with why and by whom. The deposit row is never changed: its
    journal and stock entries are reversed by entries of their own (``void:{event_id}``). One
    void per deposit (unique): a second is refused. A correction names the deposit that replaced
    the voided one."""

    __tablename__ = "deposit_void"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deposit_id: Mapped[int] = mapped_column(ForeignKey("deposit.id"), unique=True)
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(64))
    voided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    replacement_id: Mapped[int | None] = mapped_column(ForeignKey("deposit.id"), nullable=True)
    deposit: Mapped[Deposit] = relationship(foreign_keys=[deposit_id])
    replacement: Mapped[Deposit | None] = relationship(foreign_keys=[replacement_id])


class DepositDay(Base):
    """The diverted tonnage of one city-local day, bank, category and basis (``manual``: entered
    by hand, estimated; else weighed): the sum and the count of its non-voided deposits.

    Kept in the same transaction as every change to them: :func:`apply_deposits` adds each
    batch (one upsert per group), a manual deposit or a correction's replacement adds itself,
    a void subtracts its deposit (a row whose count reaches 0 is deleted). ``local_date`` is
    the deposit's ``measured_at`` in its bank's city zone, so any local day, week, month or year
    is a union of rows and the DLH reports (:mod:`wastebank.reports`) read these instead of
    every deposit. :func:`verify` recomputes it from the deposits; :func:`rebuild_deposit_days`
    makes it again (after a city's zone was changed, for one)."""

    __tablename__ = "deposit_day"
    __table_args__ = (UniqueConstraint("local_date", "bank_id", "category_id", "manual"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    local_date: Mapped[date] = mapped_column(Date)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    manual: Mapped[bool] = mapped_column(Boolean)
    net_g: Mapped[int] = mapped_column(BigInteger)
    deposits: Mapped[int] = mapped_column(BigInteger)


class DepositMonth(Base):
    """The monthly roll-up of :class:`DepositDay`: per city-local month (``month``: its first
    day), bank, category and basis, the sum and the count of the non-voided deposits.

    Kept by the same upsert, in the same transaction, as the daily rows (a void subtracts from
    both; a row whose count reaches 0 is deleted), so that a year of reports by month reads a
    few thousand rows instead of every day's (bench/reports.py: 2,000,000 deposits give ~120,000
    daily rows and ~4,600 monthly ones). A local month is a union of local days, so the two
    agree exactly: :func:`verify` checks both against the deposits, :func:`rebuild_deposit_days`
    makes both again."""

    __tablename__ = "deposit_month"
    __table_args__ = (UniqueConstraint("month", "bank_id", "category_id", "manual"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[date] = mapped_column(Date)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    manual: Mapped[bool] = mapped_column(Boolean)
    net_g: Mapped[int] = mapped_column(BigInteger)
    deposits: Mapped[int] = mapped_column(BigInteger)


class PayoutMethod(StrEnum):
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    EWALLET = "ewallet"  # DANA, OVO, GoPay, ShopeePay, ...


class WithdrawalStatus(StrEnum):
    """requested -> approved -> paid; requested -> rejected; requested/approved -> cancelled."""

    REQUESTED = "requested"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


OPEN_WITHDRAWALS = (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED)


class Withdrawal(Base):
    """A member's request to take money out (penarikan). Its amount is reserved from the moment
    it is requested until it is paid (journal entries ``withdrawal:{id}``), rejected or
    cancelled: a member's available balance is their balance minus their open withdrawals."""

    __tablename__ = "withdrawal"
    __table_args__ = (
        CheckConstraint("amount_idr > 0", name="ck_withdrawal_amount_positive"),
        Index("ix_withdrawal_member_status", "member_id", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"))
    amount_idr: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(16))
    destination: Mapped[str | None] = mapped_column(
        String(100), nullable=True, doc="account or e-wallet number; None for cash"
    )
    status: Mapped[str] = mapped_column(String(16), default=WithdrawalStatus.REQUESTED)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    requested_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True, doc="why rejected/cancelled")
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    paid_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    payout_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # Migration 0011: above the second-approval amount when it was requested
    # (money_rules.MoneyRules.second_approval_above_idr), so the one who asked may not approve it
    # and neither may pay it out. Fixed at the request: a later change of the setting does not
    # change the rule for a withdrawal already open.
    dual_control: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    member: Mapped[Member] = relationship()
    bank: Mapped[Bank] = relationship()


class Collector(Base):
    """A pengepul (or a recycler, a BSI of another network) that buys stock from banks."""

    __tablename__ = "collector"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("city.id"), nullable=True)


class MovementKind(StrEnum):
    SALE = "sale"  # sold to a pengepul: weight and revenue
    TRANSFER = "transfer"  # a unit's stock delivered to its induk
    RESIDUE = "residue"  # unsellable, sent to the TPS/TPA
    BURNED = "burned"  # burned (bakar)


class StockMovement(Base):
    """Stock leaving a bank: the document behind the stock entries ``{kind}:{id}``.

    ``grams`` leave the bank's stock. A transfer puts ``received_g`` (re-weighed at the induk;
    ``grams`` if not re-weighed) into the induk's stock; the difference is shrinkage (susut).
    """

    __tablename__ = "stock_movement"
    __table_args__ = (
        CheckConstraint("grams > 0", name="ck_stock_movement_grams_positive"),
        CheckConstraint(
            "revenue_idr IS NULL OR revenue_idr >= 0", name="ck_stock_movement_revenue"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    grams: Mapped[int] = mapped_column(BigInteger)
    to_bank_id: Mapped[int | None] = mapped_column(ForeignKey("bank.id"), nullable=True)
    received_g: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    collector_id: Mapped[int | None] = mapped_column(ForeignKey("collector.id"), nullable=True)
    revenue_idr: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    author: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    bank: Mapped[Bank] = relationship(foreign_keys=[bank_id])
    to_bank: Mapped[Bank | None] = relationship(foreign_keys=[to_bank_id])
    category: Mapped[Category] = relationship()
    collector: Mapped[Collector | None] = relationship()


class StockEntry(Base):
    """One leg of a balanced stock transaction in integer grams: the grams of one ``txn_ref``
    and category sum to zero. ``stock:{bank}`` is what a bank holds (never negative); the other
    leg says where the mass came from or went: ``intake:{bank}`` (members' deposits),
    ``sold:{bank}``, ``residue:{bank}``, ``burned:{bank}``, ``shrinkage:{bank}``, or another
    bank's stock (a transfer)."""

    __tablename__ = "stock_entry"
    __table_args__ = (Index("ix_stock_entry_account_category", "account", "category_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    txn_ref: Mapped[str] = mapped_column(String(120), index=True)
    account: Mapped[str] = mapped_column(String(120))
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"))
    grams: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    memo: Mapped[str] = mapped_column(String(200), default="")


class DeadLetterReason(StrEnum):
    """Why a message became a dead letter (``dead_letter.reason``, a metrics label)."""

    INVALID = "invalid"  # not our topic, not the schema, identity mismatch
    OVERSIZED = "oversized"  # over the payload limit: refused before parsing
    REJECTED = "rejected"  # well-formed, but the ledger cannot apply it (unknown card, no price)
    CONFLICT = "conflict"  # a known event id with other content
    OVER_LIMIT = "over_limit"  # heavier than its scale's limit (wastebank.money_rules)
    INFLUX_REFUSED = "influx_refused"  # InfluxDB refused its points for good


class DeadLetter(Base):
    """A message the ingester could not apply, kept byte for byte for inspection and replay.

    ``error`` is why it was first rejected and never changes; a replay that fails again stores its
    reason in ``last_error`` and counts the attempt. A replay that succeeds sets ``replayed_at`` and
    keeps the row (the audit trail of what was rejected and when it was put right) until it is
    purged.
    """

    __tablename__ = "dead_letter"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Whole: an MQTT topic can be 65,535 bytes (VARCHAR(500) until migration 0007 made a longer
    # one a DataError on PostgreSQL, which stopped the ingester).
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # Added after the first release: nullable or with a server default, so that
    # `_add_missing_columns` can add them to an existing ledger file.
    replay_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    replayed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Migration 0009: why, as a code a dashboard can count (:class:`DeadLetterReason`); the
    # deposit's event id when the payload named one; and how an operator settled a row that a
    # replay cannot settle (a conflict: applied under a new id, or discarded), by whom and why.
    reason: Mapped[str] = mapped_column(String(32), default="invalid", server_default="invalid")
    event_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    resolution: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def current_error(self) -> str:
        """The reason it is still (or was last) rejected."""
        return self.last_error or self.error


# ---- TPS (waste collection points): the registry and its alerts (wastebank/tps.py) -------------


class Tps(Base):
    """A TPS (tempat penampungan sementara): containers a fill sensor looks into.

    ``code`` is the ``tps_code`` of its fill readings. Masses are estimated as container volume x
    fill ratio x bulk density (shared/domain/estimation-methods.md §6: about 200-300 kg/m3 for
    loose MSW in TPS containers, never 1,000); ``density_source`` says where the density came
    from (a default, a study, a weighbridge calibration) and ``density_calibrated_at`` when it
    was set. Alerts: ``fill_high`` raised at ``alert_raise_fill`` and cleared at
    ``alert_clear_fill`` (hysteresis), ``sensor_offline`` after ``offline_after_min`` minutes
    without a reading.
    """

    __tablename__ = "tps"
    __table_args__ = (
        CheckConstraint("container_volume_m3 > 0", name="ck_tps_volume_positive"),
        CheckConstraint("container_count >= 1", name="ck_tps_container_count"),
        CheckConstraint("density_kg_m3 > 0", name="ck_tps_density_positive"),
        CheckConstraint("alert_clear_fill < alert_raise_fill", name="ck_tps_alert_hysteresis"),
        CheckConstraint("offline_after_min > 0", name="ck_tps_offline_after"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city_id: Mapped[int] = mapped_column(ForeignKey("city.id"), index=True)
    kelurahan_id: Mapped[int | None] = mapped_column(ForeignKey("kelurahan.id"), nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    container_volume_m3: Mapped[float] = mapped_column(Float, doc="one container's volume")
    container_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    density_kg_m3: Mapped[float] = mapped_column(Float)
    density_source: Mapped[str] = mapped_column(String(300))
    density_calibrated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    alert_raise_fill: Mapped[float] = mapped_column(Float, default=0.8, server_default="0.8")
    alert_clear_fill: Mapped[float] = mapped_column(Float, default=0.6, server_default="0.6")
    offline_after_min: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    city: Mapped[City] = relationship()
    kelurahan: Mapped[Kelurahan | None] = relationship()


class TpsAlert(Base):
    """One alert of one TPS sensor: raised once, cleared once (``cleared_at`` None: active).

    At most one active alert per (TPS, sensor, code): a partial unique index on PostgreSQL and
    SQLite alike. ``raised_published`` / ``cleared_published`` say whether the transition's MQTT
    event was acknowledged by the broker; the watcher publishes what is left on (re)connect.
    """

    __tablename__ = "tps_alert"
    __table_args__ = (
        Index(
            "uq_tps_alert_active",
            "tps_id",
            "sensor_id",
            "code",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
        Index("ix_tps_alert_raised_at", "raised_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id"), index=True)
    sensor_id: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(32))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    raised_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cleared_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(String(300), default="")
    raised_published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cleared_published: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tps: Mapped[Tps] = relationship()


class TpsPickup(Base):
    """One pickup (a container emptied) detected from a TPS sensor's fill readings: the journal
    the TPA-bound tonnage reads (wastebank/tps.py, migration 0008).

    The detection's facts only, never a mass: ``at`` (the first low reading), ``fill_before``
    (median of the readings just before the drop) and ``fill_after`` (median of the persisting
    low readings). The mass is computed when read, from the TPS's current container volume and
    bulk density, so a recalibrated density applies to past pickups too. Unique per (TPS,
    sensor, time): the watcher inserts with ON CONFLICT DO NOTHING, so a redelivered reading or
    a restart never counts a pickup twice; ``wastebank tps rebuild-pickups`` replaces a range.
    """

    __tablename__ = "tps_pickup"
    __table_args__ = (
        UniqueConstraint("tps_id", "sensor_id", "at"),
        Index("ix_tps_pickup_tps_id_at", "tps_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tps_id: Mapped[int] = mapped_column(ForeignKey("tps.id"))
    sensor_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    fill_before: Mapped[float] = mapped_column(Float)
    fill_after: Mapped[float] = mapped_column(Float)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# ---- engine -----------------------------------------------------------------------------------


def make_engine(
    url: str | None = None,
    *,
    writer: bool = True,
    migrate: bool | None = None,
    pool: dict[str, Any] | None = None,
) -> Engine:
    """An engine for ``url`` (default: the SQLite file under .run/) whose schema is at this
    release's head.

    ``migrate`` (default: ``writer``): a writer upgrades the ledger to the head first, under the
    migration lock (:mod:`wastebank.migrations`; a no-op costing one query when it is there
    already); a reader (``writer=False``, the API) only checks and raises
    :class:`~wastebank.migrations.LedgerSchemaError` when it is not. ``migrate=False`` does
    neither (``wastebank ledger migrate`` / ``current``).

    ``postgresql://`` URLs use psycopg 3 (``postgresql+psycopg://``); pooled connections are
    checked before use, so a restarted server costs no failed batch.

    ``pool``: the connection pool's size (``pool_size``, ``max_overflow``, ``pool_timeout``);
    default SQLAlchemy's (5 + 10 overflow, 30 s), but the API sizes its pools with its threads
    (api/capacity.py). Ignored for an in-memory SQLite database (one connection per thread).

    On SQLite, SQLAlchemy (not the driver) begins transactions, so savepoints work; a ``writer``
    engine begins them IMMEDIATE: it takes the write lock up front and waits for it (busy
    timeout) when another process holds it, instead of failing when it upgrades a read
    snapshot another writer has since changed ("database is locked"). Several ingesters on one
    SQLite ledger depend on this. Readers (the API) keep deferred transactions.
    """
    from wastebank import migrations

    parsed = make_url(url or os.environ.get("WASTEBANK_LEDGER_URL") or default_ledger_url())
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            _private_file(parsed.database)
            engine = create_engine(parsed, **(pool or {}))
        else:
            engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    else:
        engine = plain_engine(parsed, pool_pre_ping=True, **(pool or {}))
    try:
        if migrate or (migrate is None and writer):
            migrations.upgrade(engine)
        elif migrate is None:
            migrations.check(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def plain_engine(url: str | URL, **kwargs: Any) -> Engine:
    """``create_engine(url, **kwargs)`` (``postgresql://``: psycopg 3) that logs in to our own
    PostgreSQL with its role's password from `services up`'s file
    (:func:`postgresql_password_file`): a PostgreSQL ledger without :func:`make_engine`'s
    migrations (tests, benchmarks)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **kwargs)
    secret = postgresql_password_file(parsed)
    if secret is not None:
        read_secret(secret)  # a missing or open file fails here, at start, naming it

        @event.listens_for(engine, "do_connect")
        def _password(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
            # Read at each new connection: a password rotated by `services up` is used without
            # a restart (pooled connections stay logged in).
            params["password"] = read_secret(secret)

    return engine


def postgresql_password_file(url: URL) -> Path | None:
    """The password file of ``url``'s role on this checkout's own PostgreSQL, when ``url`` has
    no password and no libpq ``passfile`` of its own (``config.local_postgresql_password_file``).

    The URL itself never carries the password (URLs end up in logs, ``ps`` and error messages);
    the engine reads it from the file at each new connection."""
    if url.get_backend_name() != "postgresql" or url.password is not None:
        return None
    if "passfile" in url.query:
        return None
    return local_postgresql_password_file(url.host, url.port, url.username)


def postgresql_conninfo(url: str | URL) -> tuple[str, str | None]:
    """A libpq connection URI for ``url`` (any driver name), without a password, and the
    password to log in with: the URL's own, else the local one (:func:`postgresql_password_file`),
    else None (libpq's ``passfile``/``~/.pgpass``, or a server that asks for none). For tools
    that talk to PostgreSQL without an engine (``psycopg.connect``, ``pg_dump``)."""
    parsed = make_url(url)
    libpq = parsed.set(drivername="postgresql", password=None).render_as_string(False)
    if parsed.password is not None:
        return libpq, str(parsed.password)
    secret = postgresql_password_file(parsed)
    return libpq, None if secret is None else read_secret(secret)


def _private_file(path: str) -> None:
    """A ledger file only its owner can read (0600) from its first byte; an older one that others
    could read is made private. SQLite gives its -wal and -shm files the same mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = os.stat(path)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(path, 0o600)
    else:
        os.close(fd)


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


class LedgerError(Exception):
    """A request the ledger refuses; whatever it had written in its transaction is rolled back."""


class NotFound(LedgerError):
    pass


class NotAllowed(LedgerError):
    """The author is not an attendant of the bank, or the bank may not do this."""


class AlreadyVoided(LedgerError):
    pass


class InsufficientBalance(LedgerError):
    pass


class InsufficientStock(LedgerError):
    pass


class BelowMinimum(LedgerError):
    pass


class InvalidTransition(LedgerError):
    """A withdrawal asked to move to a state its current state does not lead to."""


class PriceHistoryLocked(LedgerError):
    """A new price would reprice deposits already priced: history is never rewritten."""


class DepositRejected(LedgerError):
    """The deposit is well-formed but cannot be applied (unknown card, no price, ...)."""


class IdempotencyKeyReused(LedgerError):
    """An author's idempotency key came again with another deposit (member, category, weight,
    count, time or bank): the key names the deposit first recorded with it, so the second is
    refused, never taken for a retry nor recorded as a new deposit."""


class OverLimit(LedgerError):
    """A value beyond a money rule (:mod:`wastebank.money_rules`): a price, a manual deposit's
    weight or amount. The message, in Bahasa Indonesia then English, names the setting."""

    def __init__(self, breach: Breach) -> None:
        super().__init__(breach.message)
        self.breach = breach


class DepositOverLimit(OverLimit, DepositRejected):
    """A deposit beyond a money rule (a scale's or a manual deposit's limit): refused like any
    rejected deposit; the ingester keeps a scale's as an ``over_limit`` dead letter."""


class SecondPersonRequired(NotAllowed):
    """A withdrawal above the second-approval amount, approved by the one who asked for it, or
    paid out by the one who asked or approved: someone else must."""


class DepositConflict(LedgerError):
    """A deposit whose event id the ledger knows with other content (bank, gateway, member or
    card, category, grams, time): never applied, never merged; the ingester dead-letters it."""

    def __init__(self, event_id: str, existing: AppliedDeposit, differences: list[str]) -> None:
        super().__init__(f"event {event_id} is known with other content: " + "; ".join(differences))
        self.event_id = event_id
        self.existing = existing
        self.differences = differences


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
    measured_at: datetime | None = None
    gateway_id: str = ""
    """Where and when, as the ledger keeps them: what the deposit's InfluxDB point is made of."""


def amount_for_quantity(unit: str, quantity: int, price_per_unit_idr: int) -> int:
    """Integer Rupiah for ``quantity`` of a category counted in ``unit``: grams at a price per kg,
    millilitres at a price per litre (both rounded half up), or pieces at a price per piece."""
    if unit == Unit.PIECE:
        return quantity * price_per_unit_idr
    return amount_for(quantity, price_per_unit_idr)


def price_in_force(session: Session, bank_id: int, category_id: int, at: datetime) -> int | None:
    """The price of ``category_id`` at ``bank_id`` at ``at``: from its induk's list when the bank
    uses its induk's prices."""
    bank = session.get(Bank, bank_id)
    owner = bank.price_bank_id if bank is not None else bank_id
    stmt = (
        select(Price.price_per_kg_idr)
        .where(Price.bank_id == owner, Price.category_id == category_id)
        .where(Price.effective_from <= at)
        .order_by(Price.effective_from.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def member_account(member_no: str) -> str:
    return f"member:{member_no}"


def bank_purchase_account(bank_code: str) -> str:
    return f"bank:{bank_code}:waste_purchases"


def bank_funds_account(bank_code: str, method: str) -> str:
    """Where a bank's money is: ``cash``, or the account behind transfers and e-wallets."""
    return f"bank:{bank_code}:funds:{method}"


def bank_sales_account(bank_code: str) -> str:
    return f"bank:{bank_code}:sales"


def stock_account(bank_code: str) -> str:
    return f"stock:{bank_code}"


def stock_flow_account(kind: str, bank_code: str) -> str:
    """The other leg of a stock entry: ``intake``, ``sold``, ``residue``, ``burned``,
    ``shrinkage``."""
    return f"{kind}:{bank_code}"


def apply_deposit(
    session: Session, ev: DepositEvent, *, rules: MoneyRules = DEFAULT_RULES
) -> AppliedDeposit:
    """Apply ``ev`` once. Commits. A replay of an applied event returns a DUPLICATE outcome;
    a deposit that cannot be applied raises :class:`DepositRejected` (:class:`DepositConflict`:
    its id is known with other content; :class:`DepositOverLimit`: heavier than its scale's
    limit in ``rules``) and changes nothing."""
    (result,) = apply_deposits(session, [ev], rules=rules)
    if isinstance(result, DepositRejected | DepositConflict):
        raise result
    return result


def apply_deposits(
    session: Session, events: Sequence[DepositEvent], *, rules: MoneyRules = DEFAULT_RULES
) -> list[AppliedDeposit | DepositRejected | DepositConflict]:
    """Apply a batch in one transaction (one commit), each deposit exactly once by its event id.

    The result for each event, in order, is its outcome or its rejection; one that is rejected
    (unknown card, no price, ...) leaves the others applied. An event already in the ledger, or
    one seen earlier in the batch, is a DUPLICATE described as it was applied. Reference data
    (banks, cards, members, categories, prices) is read once per batch, the event ids already
    applied in one query per chunk; the deposits, their journal entries and their stock entries
    are then written with one multi-row INSERT each. A deposit another writer applied between
    our read and our write (the insert skips it on the unique event id) is reported DUPLICATE
    and gets no entries. A known id (in the ledger or earlier in the batch) is a DUPLICATE only
    when it means the same deposit (:func:`_differences`); with other content it is a
    :class:`DepositConflict`, and the ledger keeps what it had. A new deposit heavier than its
    scale's limit in ``rules`` (:mod:`wastebank.money_rules`) is a :class:`DepositOverLimit`
    (a :class:`DepositRejected`). The daily summary (:class:`DepositDay`) gets one upsert per
    local day, bank and category of the batch.
    """
    ref = _References(session, rules)
    known = ref.applied([ev.event_id for ev in events])
    out: list[AppliedDeposit | DepositRejected | DepositConflict] = []
    planned: dict[str, tuple[dict[str, Any], AppliedDeposit]] = {}  # event id -> row, outcome
    for ev in events:
        done = known.get(ev.event_id)
        if done is None and (earlier := planned.get(ev.event_id)) is not None:
            done = replace(earlier[1], outcome=Outcome.DUPLICATE)
        if done is not None:
            differences = _differences(ref, ev, done)
            out.append(DepositConflict(ev.event_id, done, differences) if differences else done)
            continue
        try:
            planned[ev.event_id] = plan = ref.plan(ev)
        except DepositRejected as rejected:
            out.append(rejected)
            continue
        out.append(plan[1])
    if planned:
        # Rows go in in event-id order: two writers with overlapping batches then wait for each
        # other's uncommitted ids in one global order and cannot deadlock (PostgreSQL aborted
        # one of two ingesters given the same deposits in opposite orders).
        inserted = _insert_deposits(
            session, sorted((row for row, _ in planned.values()), key=lambda r: r["event_id"])
        )
        entries: list[dict[str, Any]] = []
        stock: list[dict[str, Any]] = []
        days: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
        for event_id, (row, applied) in planned.items():
            if event_id in inserted:
                entries.extend(_journal_entries(applied))
                stock.extend(_stock_entries(applied, row["category_id"]))
                day = days[ref.day_key(row)]
                day[0] += row["net_g"]
                day[1] += 1
        if entries:
            session.execute(insert(_JOURNAL), entries)
            session.execute(insert(_STOCK), stock)
            _add_to_days(session, days)
        lost = [event_id for event_id in planned if event_id not in inserted]
        if lost:
            # Another ingester applied these between our read and our write: its rows stand.
            winners = ref.applied(lost)
            if missing := [event_id for event_id in lost if event_id not in winners]:
                raise RuntimeError(f"deposits neither inserted nor found: {missing[:5]}")
            out = [winners.get(r.event_id, r) if isinstance(r, AppliedDeposit) else r for r in out]
            by_id = {ev.event_id: ev for ev in events}
            for i, r in enumerate(out):
                if isinstance(r, AppliedDeposit) and r.event_id in lost:
                    if differences := _differences(ref, by_id[r.event_id], r):
                        out[i] = DepositConflict(r.event_id, r, differences)
    session.commit()
    return out


def _differences(ref: _References, ev: DepositEvent, known: AppliedDeposit) -> list[str]:
    """How ``ev`` differs from the deposit the ledger knows by its id, in what makes a deposit
    (bank, gateway, member, category, grams, time); [] when it means the same deposit. A card
    is compared by the member it belongs to now."""
    try:
        member_no = ref.depositor(ev).member_no
    except DepositRejected:
        member_no = f"? ({ev.card_uid or ev.member_no}: unknown)"
    pairs = (
        ("bank", known.bank_code, ev.bank_code),
        ("gateway", known.gateway_id, ev.gateway_id),
        ("member", known.member_no, member_no),
        ("category", known.category_code, ev.category_code),
        ("net_g", known.net_g, ev.net_g),
        ("measured_at", known.measured_at, ev.measured_at),
    )
    return [f"{name}: {_shown(was)} -> {_shown(now)}" for name, was, now in pairs if was != now]


def _shown(value: object) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


_DEPOSIT = cast(Table, Deposit.__table__)
_JOURNAL = cast(Table, JournalEntry.__table__)
_STOCK = cast(Table, StockEntry.__table__)
_DAY = cast(Table, DepositDay.__table__)
_MONTH = cast(Table, DepositMonth.__table__)

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


def _stock_entries(d: AppliedDeposit, category_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two stock legs of an applied deposit: into the bank's stock, out of members' intake."""
    txn = f"deposit:{d.event_id}"
    return (
        {
            "txn_ref": txn,
            "account": stock_account(d.bank_code),
            "category_id": category_id,
            "grams": d.net_g,
            "memo": d.member_no,
        },
        {
            "txn_ref": txn,
            "account": stock_flow_account("intake", d.bank_code),
            "category_id": category_id,
            "grams": -d.net_g,
            "memo": d.member_no,
        },
    )


# ---- the daily summary (DepositDay) -------------------------------------------------------------

DayKey = tuple[date, int, int, bool]  # city-local date, bank id, category id, manual
_DAY_KEY = ("local_date", "bank_id", "category_id", "manual")
_MONTH_KEY = ("month", "bank_id", "category_id", "manual")


def _day_key(at: datetime, zone: ZoneInfo, bank_id: int, category_id: int, manual: bool) -> DayKey:
    return at.astimezone(zone).date(), bank_id, category_id, bool(manual)


def _add_to_days(session: Session, days: dict[DayKey, list[int]]) -> None:
    """Add [grams, deposits] to each group of the daily summary and of its monthly roll-up
    (negative: take them away): one ``INSERT ... ON CONFLICT DO UPDATE`` row per group, in key
    order, so that concurrent writers lock the rows they share in the same order (days first,
    then months, in every writer). A row whose count falls to 0 is deleted."""
    if not days:
        return
    months: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for (day, bank_id, category_id, manual), (grams, count) in days.items():
        acc = months[day.replace(day=1), bank_id, category_id, manual]
        acc[0] += grams
        acc[1] += count
    _add_to_summary(session, _DAY, _DAY_KEY, days)
    _add_to_summary(session, _MONTH, _MONTH_KEY, months)


def _add_to_summary(
    session: Session, table: Table, names: tuple[str, ...], groups: Mapping[DayKey, list[int]]
) -> None:
    ordered = sorted((k, v) for k, v in groups.items() if v != [0, 0])
    if not ordered:
        return
    rows = [
        dict(zip(names, key, strict=True)) | {"net_g": grams, "deposits": count}
        for key, (grams, count) in ordered
    ]
    make_insert = _ON_CONFLICT_INSERTS.get(session.get_bind().dialect.name)
    if make_insert is not None:
        stmt = make_insert(table)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c[k] for k in names],
                set_={
                    "net_g": table.c.net_g + stmt.excluded.net_g,
                    "deposits": table.c.deposits + stmt.excluded.deposits,
                },
            ),
            rows,
        )
    else:  # any other dialect: update, else insert (one writer at a time)
        for row in rows:
            found = session.execute(
                update(table)
                .where(*(table.c[k] == row[k] for k in names))
                .values(
                    net_g=table.c.net_g + row["net_g"],
                    deposits=table.c.deposits + row["deposits"],
                )
            )
            if not isinstance(found, CursorResult) or found.rowcount == 0:
                session.execute(insert(table), row)
    for row, (_key, (_grams, count)) in zip(rows, ordered, strict=True):
        if count <= 0:
            session.execute(
                delete(table).where(*(table.c[k] == row[k] for k in names), table.c.deposits == 0)
            )


def _zone_of_bank(session: Session, bank_id: int) -> ZoneInfo:
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound(f"unknown bank id {bank_id}")
    return ZoneInfo(bank.city.timezone)


def _day_totals_query() -> Any:
    """PostgreSQL: local date, bank, category, manual, grams and count of non-voided deposits."""
    d = Deposit
    day = sql_cast(func.timezone(City.timezone, d.measured_at), Date)
    voided = select(DepositVoid.id).where(DepositVoid.deposit_id == d.id).exists()
    return (
        select(day, d.bank_id, d.category_id, d.manual, func.sum(d.net_g), func.count())
        .join(Bank, d.bank_id == Bank.id)
        .join(City, Bank.city_id == City.id)
        .where(~voided)
        .group_by(day, d.bank_id, d.category_id, d.manual)
    )


def _day_totals(session: Session) -> dict[DayKey, tuple[int, int]]:
    """(grams, count) of the non-voided deposits per local day, bank, category and basis, from
    the deposits themselves: in SQL on PostgreSQL (``timezone(zone, measured_at)``), else
    deposit by deposit here (SQLite has no zones)."""
    if session.get_bind().dialect.name == "postgresql":
        return {
            (day, b, c, bool(m)): (int(g), int(n))
            for day, b, c, m, g, n in session.execute(_day_totals_query())
        }
    d = Deposit
    voided = select(DepositVoid.id).where(DepositVoid.deposit_id == d.id).exists()
    rows = session.execute(
        select(d.measured_at, d.bank_id, d.category_id, d.manual, d.net_g, City.timezone)
        .join(Bank, d.bank_id == Bank.id)
        .join(City, Bank.city_id == City.id)
        .where(~voided)
    )
    zones: dict[str, ZoneInfo] = {}
    totals: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for at, bank_id, category_id, manual, net_g, zone in rows:
        tz = zones.get(zone) or zones.setdefault(zone, ZoneInfo(zone))
        acc = totals[_day_key(at, tz, bank_id, category_id, manual)]
        acc[0] += net_g
        acc[1] += 1
    return {k: (g, n) for k, (g, n) in totals.items()}


def month_of(day: Any, dialect: str) -> Any:
    """SQL for the first day of ``day``'s month (a ``Date`` column or expression)."""
    if dialect == "postgresql":
        return sql_cast(func.date_trunc("month", sql_cast(day, DateTime)), Date)
    return func.substr(day, 1, 8).concat("01")  # SQLite keeps a date as its text, 2026-10-31


def rebuild_deposit_days(session: Session, *, progress: Callable[[str], None] | None = None) -> int:
    """Make the daily summary and its monthly roll-up again from the deposits (voided ones left
    out); return the daily rows. ``progress`` is told each step as it begins.

    For a ledger whose deposits were written around :func:`apply_deposits` (a bulk COPY) or
    whose city changed its zone, or after :func:`verify` found the summary wrong. On
    PostgreSQL the deposits, voids and the summaries are locked against writers meanwhile (they
    wait, then add to the new rows). Commits."""
    step = progress or (lambda _what: None)
    with _transaction(session):
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            step("mengunci / locking deposits, voids and summaries against writers")
            session.execute(
                text(
                    "LOCK TABLE deposit, deposit_void, deposit_day, deposit_month "
                    "IN SHARE ROW EXCLUSIVE MODE"
                )
            )
            session.execute(delete(DepositDay))
            step("menjumlahkan setoran per hari lokal / summing the deposits by local day")
            session.execute(
                insert(_DAY).from_select([*_DAY_KEY, "net_g", "deposits"], _day_totals_query())
            )
        else:
            session.execute(delete(DepositDay))
            step("menjumlahkan setoran per hari lokal / summing the deposits by local day")
            rows = [
                dict(zip(_DAY_KEY, key, strict=True)) | {"net_g": g, "deposits": n}
                for key, (g, n) in sorted(_day_totals(session).items())
            ]
            step(f"menulis ringkasan harian / writing the daily summary ({len(rows):,} rows)")
            if rows:
                session.execute(insert(_DAY), rows)
        step("menulis ringkasan bulanan / writing the monthly roll-up")
        session.execute(delete(DepositMonth))
        session.execute(
            insert(_MONTH).from_select([*_MONTH_KEY, "net_g", "deposits"], _months(dialect))
        )
        count = session.scalar(select(func.count()).select_from(DepositDay)) or 0
        step("menyimpan / committing")
    return count


def _months(dialect: str) -> Any:
    """The monthly roll-up of the daily summary, as a query."""
    dd = DepositDay
    month = month_of(dd.local_date, dialect)
    return select(
        month, dd.bank_id, dd.category_id, dd.manual, func.sum(dd.net_g), func.sum(dd.deposits)
    ).group_by(month, dd.bank_id, dd.category_id, dd.manual)


_CHUNK = 500  # event ids per IN (...) query


class _References:
    """The reference rows one batch needs, each read once, and the money rules it is held to."""

    def __init__(self, session: Session, rules: MoneyRules = DEFAULT_RULES) -> None:
        self.s = session
        self.rules = rules
        self.banks: dict[str, Bank | None] = {}
        self.cards: dict[str, Member | None] = {}
        self.members: dict[str, Member | None] = {}
        self.categories: dict[str, Category | None] = {}
        self.prices: dict[tuple[int, int], list[tuple[datetime, int]]] = {}
        self.zones: dict[int, ZoneInfo] = {}  # bank id -> its city's zone

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
                    Kecamatan.name,
                    Category.code,
                    Deposit.net_g,
                    Deposit.amount_idr,
                    Deposit.price_per_kg_idr,
                    Deposit.measured_at,
                    Deposit.gateway_id,
                )
                .select_from(Deposit)
                .join(Member, Deposit.member_id == Member.id)
                .join(Bank, Deposit.bank_id == Bank.id)
                .join(Kelurahan, Bank.kelurahan_id == Kelurahan.id)
                .join(Kecamatan, Kelurahan.kecamatan_id == Kecamatan.id)
                .join(Category, Deposit.category_id == Category.id)
                .where(Deposit.event_id.in_(ids[start : start + _CHUNK]))
            )
            for row in self.s.execute(stmt):
                found[row[0]] = AppliedDeposit(
                    Outcome.DUPLICATE, *row[:8], measured_at=row[8], gateway_id=row[9]
                )
        return found

    def bank(self, code: str) -> Bank | None:
        """The bank, with its kelurahan and kecamatan (the InfluxDB tag) and its city (the zone
        of its local days) in the same query."""
        if code not in self.banks:
            bank = self.s.scalar(
                select(Bank)
                .options(
                    joinedload(Bank.kelurahan).joinedload(Kelurahan.kecamatan),
                    joinedload(Bank.city),
                )
                .where(Bank.code == code)
            )
            self.banks[code] = bank
            if bank is not None:
                self.zones[bank.id] = ZoneInfo(bank.city.timezone)
        return self.banks[code]

    def limits(self, bank: Bank) -> CityRules:
        """The money rules in force in ``bank``'s city (its city is loaded with it)."""
        return self.rules.city(bank.city.code)

    def day_key(self, row: dict[str, Any]) -> DayKey:
        """The daily-summary group of a planned ``deposit`` row (its bank was planned here)."""
        return _day_key(
            row["measured_at"],
            self.zones[row["bank_id"]],
            row["bank_id"],
            row["category_id"],
            row.get("manual", False),
        )

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
        """The price in force at ``at`` on the list ``bank`` buys at (its induk's, if it uses
        its induk's prices)."""
        key = (bank.price_bank_id, category.id)
        if key not in self.prices:
            rows = self.s.execute(
                select(Price.effective_from, Price.price_per_kg_idr)
                .where(Price.bank_id == key[0], Price.category_id == category.id)
                .order_by(Price.effective_from.desc())
            ).all()
            self.prices[key] = [(r[0], int(r[1])) for r in rows]
        return next((p for since, p in self.prices[key] if since <= at), None)

    def plan(
        self, ev: DepositEvent, *, check_limits: bool = True
    ) -> tuple[dict[str, Any], AppliedDeposit]:
        """The ``deposit`` row for ``ev`` and its APPLIED outcome, or :class:`DepositRejected`
        (:class:`DepositOverLimit` beyond its scale's limit, unless ``check_limits`` is off: an
        operator resolving such a dead letter)."""
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
        if category.unit != Unit.KG:
            raise DepositRejected(
                f"category {category.code} is counted per {category.unit}, not weighed: "
                "an attendant enters it with its count"
            )
        price = self.price(bank, category, ev.measured_at)
        if price is None:
            raise DepositRejected(
                f"bank {bank.code} has no price for {category.code} at {ev.measured_at.isoformat()}"
            )
        if check_limits and (
            breach := self.limits(bank).scale_breach(ev.gateway_id, ev.scale_id, ev.net_g)
        ):
            raise DepositOverLimit(breach)
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
            measured_at=ev.measured_at,
            gateway_id=ev.gateway_id,
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


# ---- reference data: areas, banks, attendants, members ---------------------------------------


class MemberPrivacySettings(WastebankSettings):
    """The secret key of the NIK hash (see :func:`hash_nik`)."""

    nik_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY), at least 32 random characters "
        "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); kept outside the "
        "ledger database and its backups. Unset: NIKs cannot be recorded.",
    )

    def key(self) -> bytes:
        if self.nik_key is None:
            raise NotAllowed("no NIK key (WASTEBANK_NIK_KEY): a NIK cannot be recorded or found")
        return self.nik_key.get_secret_value().encode()


def hash_nik(nik: str, key: bytes) -> str:
    """The keyed hash that stands for a NIK in the ledger: HMAC-SHA256 under ``key``, in hex.

    A NIK (16 digits) is mostly predictable: region code, birth date, a short sequence. A plain
    SHA-256 of it could be reversed by hashing every plausible NIK, so the ledger keeps only an
    HMAC under a secret key that lives in the settings, never in the database: a stolen ledger
    or backup gives no NIK, and without the key no one can test a guess against it. The same NIK
    under the same key always gives the same hash, so a person registered twice (at this bank or
    another) is found by hashing the NIK they show and looking it up (:func:`members_with_nik`).
    The NIK itself is never stored, logged or returned. Changing the key orphans every stored
    hash (they can no longer be matched), so it is rotated only together with re-collected NIKs.
    """
    digits = "".join(ch for ch in nik if ch not in " .-")
    if len(digits) != 16 or not digits.isascii() or not digits.isdigit():
        raise ValueError("a NIK is 16 digits")
    return hmac.new(key, digits.encode(), hashlib.sha256).hexdigest()


def _hierarchy_problem(kind: str, parent_kind: str | None, use_parent_price: bool) -> str | None:
    """What is wrong with a bank of ``kind`` under a parent of ``parent_kind`` (None: no parent)."""
    if kind not in set(BankKind):
        return f"kind {kind!r} is neither induk nor unit"
    if kind == BankKind.INDUK and parent_kind is not None:
        return "an induk has no parent"
    if parent_kind is not None and parent_kind != BankKind.INDUK:
        return "a unit's parent must be an induk"
    if use_parent_price and parent_kind is None:
        return "uses its induk's prices but has no induk"
    return None


def create_bank(
    session: Session,
    *,
    code: str,
    name: str,
    kelurahan: Kelurahan,
    kind: str = BankKind.UNIT,
    parent: Bank | None = None,
    use_parent_price: bool = False,
    min_withdrawal_idr: int = 0,
) -> Bank:
    """Add a bank in ``kelurahan``: an induk, or a unit (under ``parent``, an induk of the same
    city, or on its own). Flushes; the caller commits."""
    problem = _hierarchy_problem(kind, parent.kind if parent else None, use_parent_price)
    city_id = kelurahan.kecamatan.city_id
    if problem is None and parent is not None and parent.city_id != city_id:
        problem = "its induk is in another city"
    if problem is None and min_withdrawal_idr < 0:
        problem = "a minimum withdrawal is not negative"
    if problem is not None:
        raise NotAllowed(f"bank {code}: {problem}")
    bank = Bank(
        code=code,
        name=name,
        city_id=city_id,
        kelurahan_id=kelurahan.id,
        kind=kind,
        parent_id=parent.id if parent else None,
        use_parent_price=use_parent_price,
        min_withdrawal_idr=min_withdrawal_idr,
    )
    session.add(bank)
    session.flush()
    return bank


def bank_units(session: Session, induk_code: str) -> list[Bank]:
    """The units under an induk, by code."""
    parent = _bank(session, induk_code)
    return list(
        session.scalars(select(Bank).where(Bank.parent_id == parent.id).order_by(Bank.code))
    )


def create_attendant(session: Session, bank: Bank, staff_id: str, name: str) -> Attendant:
    """Attach staff user ``staff_id`` to ``bank`` as a petugas. Flushes; the caller commits."""
    if not staff_id.strip():
        raise NotAllowed("an attendant needs a staff id")
    row = Attendant(bank_id=bank.id, staff_id=staff_id, name=name, active=True)
    session.add(row)
    session.flush()
    return row


def require_attendant(session: Session, bank: Bank, author: str) -> None:
    """Refuse (:class:`NotAllowed`) unless ``author`` is an active attendant of ``bank`` or of
    its induk, or an active admin (:mod:`wastebank.access`, whose usernames are the staff ids).
    The one place where the ledger asks who may do what; the API checks roles before it calls
    (an admin may set prices and decide withdrawals, not record deposits or sales)."""
    banks = [bank.id] if bank.parent_id is None else [bank.id, bank.parent_id]
    found = session.scalar(
        select(Attendant.id)
        .where(Attendant.staff_id == author, Attendant.bank_id.in_(banks), Attendant.active)
        .limit(1)
    )
    if not author or (found is None and not _access.is_admin_author(session, author)):
        raise NotAllowed(f"{author!r} is not an attendant of {bank.code}")


def _rt_rw(value: str | int | None, what: str) -> str | None:
    if value is None:
        return None
    digits = str(value).strip()
    if not digits.isdigit() or not 0 < int(digits) < 1000:
        raise ValueError(f"{what} is a number from 1 to 999, not {value!r}")
    return f"{int(digits):03d}"


def create_member(
    session: Session,
    *,
    bank: Bank,
    member_no: str,
    name: str,
    kind: str = MemberKind.INDIVIDUAL,
    phone: str | None = None,
    kelurahan: Kelurahan | None = None,
    rt: str | int | None = None,
    rw: str | int | None = None,
    nik: str | None = None,
    nik_key: bytes | None = None,
    cards: Sequence[str] = (),
) -> Member:
    """Register a nasabah with their cards. A ``nik`` is stored only as :func:`hash_nik` under
    ``nik_key`` (required with it); look for earlier registrations of the same person first with
    :func:`members_with_nik`. Flushes; the caller commits."""
    if kind not in set(MemberKind):
        raise ValueError(f"member kind {kind!r}: individual, group or institution")
    nik_hash = None
    if nik is not None:
        if nik_key is None:
            raise NotAllowed("a NIK needs the NIK key (WASTEBANK_NIK_KEY)")
        nik_hash = hash_nik(nik, nik_key)
    member = Member(
        member_no=member_no,
        name=name,
        bank_id=bank.id,
        kind=kind,
        phone=phone,
        kelurahan_id=kelurahan.id if kelurahan else None,
        rt=_rt_rw(rt, "RT"),
        rw=_rt_rw(rw, "RW"),
        nik_hash=nik_hash,
    )
    session.add(member)
    session.flush()
    session.add_all(Card(uid=uid, member_id=member.id) for uid in cards)
    session.flush()
    return member


def members_with_nik(session: Session, nik: str, nik_key: bytes) -> list[Member]:
    """Members registered with this NIK (at any bank): to find duplicates before registering."""
    digest = hash_nik(nik, nik_key)
    return list(session.scalars(select(Member).where(Member.nik_hash == digest)))


def create_collector(
    session: Session, code: str, name: str, phone: str | None = None, city: City | None = None
) -> Collector:
    """Add a pengepul that buys stock. Flushes; the caller commits."""
    row = Collector(code=code, name=name, phone=phone, city_id=city.id if city else None)
    session.add(row)
    session.flush()
    return row


# ---- shared by the operations below ----------------------------------------------------------


@contextmanager
def _transaction(session: Session) -> Iterator[None]:
    """Commit what the block wrote, or roll all of it back (locks included) when it raises."""
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    session.commit()


def _bank(session: Session, code: str) -> Bank:
    bank = session.scalar(select(Bank).where(Bank.code == code))
    if bank is None:
        raise NotFound(f"unknown bank {code!r}")
    return bank


def _category(session: Session, code: str) -> Category:
    category = session.scalar(select(Category).where(Category.code == code))
    if category is None:
        raise NotFound(f"unknown category {code!r}")
    return category


def _member(session: Session, member_no: str) -> Member:
    member = get_member(session, member_no)
    if member is None:
        raise NotFound(f"unknown member {member_no!r}")
    return member


def _lock_member(session: Session, member_id: int) -> None:
    """Hold the member's row until the transaction ends: every operation that lowers a member's
    available balance takes it first, so their check-then-write steps run one at a time.
    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite ignores FOR UPDATE, but a writer engine begins
    every transaction IMMEDIATE (see :func:`make_engine`): one writer at a time, whole ledger."""
    session.execute(select(Member.id).where(Member.id == member_id).with_for_update())


def _lock_bank(session: Session, bank_id: int) -> None:
    """Hold the bank's row: every operation that lowers its stock (or sets its prices) takes it
    first. Lock order, to never deadlock: a member before a bank."""
    session.execute(select(Bank.id).where(Bank.id == bank_id).with_for_update())


def _money(txn: str, legs: Sequence[tuple[str, int]], memo: str) -> list[JournalEntry]:
    return [JournalEntry(txn_ref=txn, account=a, amount_idr=v, memo=memo[:200]) for a, v in legs]


def _stock(
    txn: str, category_id: int, legs: Sequence[tuple[str, int]], memo: str
) -> list[StockEntry]:
    return [
        StockEntry(txn_ref=txn, account=a, category_id=category_id, grams=g, memo=memo[:200])
        for a, g in legs
    ]


def member_pending(session: Session, member_id: int) -> int:
    """Rupiah reserved by the member's open (requested or approved) withdrawals."""
    total = session.scalar(
        select(func.coalesce(func.sum(Withdrawal.amount_idr), 0)).where(
            Withdrawal.member_id == member_id, Withdrawal.status.in_(OPEN_WITHDRAWALS)
        )
    )
    return int(total or 0)


def member_available(session: Session, member_no: str) -> int:
    """What the member may still withdraw: balance minus open withdrawals."""
    member = _member(session, member_no)
    return member_balance(session, member_no) - member_pending(session, member.id)


def _check_available(session: Session, member: Member, what: str) -> None:
    balance = member_balance(session, member.member_no)
    available = balance - member_pending(session, member.id)
    if available < 0:
        raise InsufficientBalance(
            f"{what} would leave nasabah {member.member_no} Rp{available} available "
            f"(balance Rp{balance}, open withdrawals Rp{balance - available})"
        )


def stock_of(session: Session, bank_code: str, category_id: int) -> int:
    """Grams of a category a bank holds: the sum of its stock entries."""
    total = session.scalar(
        select(func.coalesce(func.sum(StockEntry.grams), 0)).where(
            StockEntry.account == stock_account(bank_code), StockEntry.category_id == category_id
        )
    )
    return int(total or 0)


def bank_stock(session: Session, bank_code: str) -> dict[str, int]:
    """Grams per category code that a bank holds (categories it never held are absent)."""
    rows = session.execute(
        select(Category.code, func.sum(StockEntry.grams))
        .join(Category, StockEntry.category_id == Category.id)
        .where(StockEntry.account == stock_account(bank_code))
        .group_by(Category.code)
        .order_by(Category.code)
    )
    return {code: int(grams) for code, grams in rows}


def _check_stock(session: Session, bank: Bank, category_id: int, what: str) -> None:
    held = stock_of(session, bank.code, category_id)
    if held < 0:
        code = session.get(Category, category_id)
        raise InsufficientStock(
            f"{what} would leave {bank.code} with {held} g of {code.code if code else category_id}"
        )


# ---- manual deposits, voids, corrections -----------------------------------------------------


def _count(category: Category, net_g: int, quantity: int | None) -> int:
    """What the deposit is priced by: grams for kg, else pieces or millilitres."""
    if net_g <= 0:
        raise DepositRejected("a deposit weighs more than 0 g")
    if category.unit == Unit.KG:
        if quantity is not None and quantity != net_g:
            raise DepositRejected(f"{category.code} is weighed: no separate quantity")
        return net_g
    if quantity is None or quantity <= 0:
        what = "pieces" if category.unit == Unit.PIECE else "millilitres"
        raise DepositRejected(f"{category.code} is counted per {category.unit}: give its {what}")
    return quantity


def _manual_plan(
    ref: _References,
    *,
    event_id: str,
    bank_code: str,
    member_no: str,
    category_code: str,
    net_g: int,
    quantity: int | None,
    measured_at: datetime,
    author: str,
    reason: str,
) -> tuple[dict[str, Any], AppliedDeposit]:
    if measured_at.tzinfo is None:
        raise ValueError("naive datetime given to the ledger; attach a time zone")
    if not reason.strip():
        raise DepositRejected("a manual deposit needs a reason")
    bank = ref.bank(bank_code)
    if bank is None:
        raise DepositRejected(f"unknown bank {bank_code!r}")
    require_attendant(ref.s, bank, author)
    member = get_member(ref.s, member_no)
    if member is None:
        raise DepositRejected(f"unknown member {member_no!r}")
    if member.bank_id != bank.id:
        raise DepositRejected(f"member {member_no} belongs to another bank")
    category = ref.category(category_code)
    if category is None:
        raise DepositRejected(f"unknown category {category_code!r}")
    count = _count(category, net_g, quantity)
    price = ref.price(bank, category, measured_at)
    if price is None:
        raise DepositRejected(
            f"bank {bank.code} has no price for {category.code} at {measured_at.isoformat()}"
        )
    amount = amount_for_quantity(category.unit, count, price)
    if breach := ref.limits(bank).manual_breach(net_g, amount):
        raise DepositOverLimit(breach)
    row = {
        "event_id": event_id,
        "member_id": member.id,
        "bank_id": bank.id,
        "category_id": category.id,
        "net_g": net_g,
        "tare_g": 0,
        "price_per_kg_idr": price,
        "amount_idr": amount,
        "measured_at": measured_at,
        "gateway_id": "manual",
        "scale_id": "manual",
        "protocol": "manual",
        "stable": False,
        "raw_frames": "[]",
        "flow": "manual",
        "quantity": None if category.unit == Unit.KG else count,
        "manual": True,
        "reason": reason,
        "author": author,
    }
    applied = AppliedDeposit(
        outcome=Outcome.APPLIED,
        event_id=event_id,
        member_no=member.member_no,
        bank_code=bank.code,
        kecamatan=bank.kecamatan,
        category_code=category.code,
        net_g=net_g,
        amount_idr=amount,
        price_per_kg_idr=price,
        measured_at=measured_at,
        gateway_id="manual",
    )
    return row, applied


def _write_deposit(session: Session, row: dict[str, Any], applied: AppliedDeposit) -> Deposit:
    deposit = Deposit(**row)
    session.add(deposit)
    session.flush()
    session.execute(insert(_JOURNAL), list(_journal_entries(applied)))
    session.execute(insert(_STOCK), list(_stock_entries(applied, row["category_id"])))
    zone = _zone_of_bank(session, row["bank_id"])
    key = _day_key(row["measured_at"], zone, row["bank_id"], row["category_id"], row["manual"])
    _add_to_days(session, {key: [row["net_g"], 1]})
    return deposit


MANUAL_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32, upper-case: no I, L, O, U, so an id read over the phone is not misheard."""
MANUAL_ID_PATTERN = r"^M-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"
"""A manual deposit's id, always issued by the server (:func:`new_manual_id`): ``M-XXXX-XXXX``,
8 random characters of :data:`MANUAL_ID_ALPHABET` (40 bits) grouped 4-4 for reading over the
phone. Upper-case, it never matches a device's id (``{gateway}.{install}.{seq}`` or pre-0.2
``{gateway}-{seq}``, lower-case: :data:`wastebank.messages.EVENT_ID_PATTERN`), so no manual
deposit can take the id of a scale deposit still on its way. The ``manual-<32 hex>`` ids of
earlier releases stay in the ledger as they are. A client never chooses the id: its retries
carry an ``idempotency_key`` instead (:func:`record_manual_deposit`)."""
MANUAL_ID_ATTEMPTS = 5
"""Draws of a manual id before a unique-constraint refusal is no longer taken for a collision."""

_T = TypeVar("_T")


def new_manual_id() -> str:
    """A new manual deposit id (:data:`MANUAL_ID_PATTERN`), from :mod:`secrets`."""
    chars = "".join(secrets.choice(MANUAL_ID_ALPHABET) for _ in range(8))
    return f"M-{chars[:4]}-{chars[4:]}"


def _with_manual_id(session: Session, write: Callable[[str], _T]) -> _T:
    """``write(id)`` in one transaction (committed) with a new manual id; run again from the
    start with a new id when a unique constraint refuses it: the id was taken (a 1 in 2**40
    chance per manual deposit in the ledger), or a concurrent retry with the same idempotency
    key got there first, which the next run finds and answers."""
    for attempt in range(1, MANUAL_ID_ATTEMPTS + 1):
        try:
            with _transaction(session):
                return write(new_manual_id())
        except IntegrityError:
            session.rollback()
            if attempt == MANUAL_ID_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _manual_differences(
    done: Deposit,
    *,
    bank_code: str,
    member_no: str,
    category_code: str,
    net_g: int,
    quantity: int | None,
    measured_at: datetime | None,
) -> list[str]:
    """What a request differs in from the manual deposit recorded with its idempotency key
    (``measured_at`` None, "now": any time)."""
    checks: list[tuple[str, object, object]] = [
        ("bank", done.bank.code, bank_code),
        ("member", done.member.member_no, member_no),
        ("category", done.category.code, category_code),
        ("net_g", done.net_g, net_g),
    ]
    # A weighed category keeps no quantity (its grams are its count): none given, or its grams.
    if not (quantity == done.quantity or (done.quantity is None and quantity == net_g)):
        checks.append(("quantity", done.quantity, quantity))
    if measured_at is not None:
        checks.append(("measured_at", done.measured_at, measured_at.astimezone(UTC)))
    return [f"{what} {old} -> {new}" for what, old, new in checks if old != new]


def record_manual_deposit(
    session: Session,
    *,
    bank_code: str,
    member_no: str,
    category_code: str,
    net_g: int,
    measured_at: datetime | None,
    author: str,
    reason: str,
    quantity: int | None = None,
    idempotency_key: str | None = None,
    rules: MoneyRules = DEFAULT_RULES,
) -> AppliedDeposit:
    """A deposit an attendant enters by hand (the scale is down, a category counted per piece or
    litre): flagged ``manual``, with ``reason`` and ``author`` (an attendant of the bank), and
    priced like any other at the price in force at ``measured_at`` (None: now). A piece or litre
    category needs ``quantity`` (pieces, millilitres) besides its weight.

    Its id is the server's, a new one each time (:data:`MANUAL_ID_PATTERN`). ``idempotency_key``
    (the client's, unique per ``author``) makes a retry safe: the same author and key again
    return the deposit first recorded with it, as a DUPLICATE, and write nothing; the same key
    with another deposit (bank, member, category, ``net_g``, ``quantity``, ``measured_at`` if
    given; not the reason) is refused with :class:`IdempotencyKeyReused`. Commits; raises
    :class:`DepositRejected` (or :class:`NotAllowed`) and writes nothing when it cannot apply:
    :class:`DepositOverLimit` beyond the manual weight or amount in ``rules``."""
    if measured_at is not None and measured_at.tzinfo is None:
        raise ValueError("naive datetime given to the ledger; attach a time zone")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 100:
        raise DepositRejected("an idempotency key has 1 to 100 characters")

    def write(event_id: str) -> AppliedDeposit:
        ref = _References(session, rules)
        if idempotency_key is not None:
            done = session.scalar(
                select(Deposit).where(
                    Deposit.author == author, Deposit.idempotency_key == idempotency_key
                )
            )
            if done is not None:
                differences = _manual_differences(
                    done,
                    bank_code=bank_code,
                    member_no=member_no,
                    category_code=category_code,
                    net_g=net_g,
                    quantity=quantity,
                    measured_at=measured_at,
                )
                if differences:
                    raise IdempotencyKeyReused(
                        f"idempotency key {idempotency_key!r} of {author} names deposit "
                        f"{done.event_id}, which differs: " + "; ".join(differences)
                    )
                return ref.applied([done.event_id])[done.event_id]
        row, applied = _manual_plan(
            ref,
            event_id=event_id,
            bank_code=bank_code,
            member_no=member_no,
            category_code=category_code,
            net_g=net_g,
            quantity=quantity,
            measured_at=utcnow() if measured_at is None else measured_at,
            author=author,
            reason=reason,
        )
        row["idempotency_key"] = idempotency_key
        _write_deposit(session, row, applied)
        return applied

    return _with_manual_id(session, write)


def _deposit_for_update(session: Session, event_id: str) -> Deposit:
    """The deposit, with its member's and its bank's rows locked (in that order)."""
    deposit = session.scalar(select(Deposit).where(Deposit.event_id == event_id))
    if deposit is None:
        raise NotFound(f"unknown deposit {event_id!r}")
    _lock_member(session, deposit.member_id)
    _lock_bank(session, deposit.bank_id)
    return deposit


def _void(session: Session, deposit: Deposit, author: str, reason: str) -> DepositVoid:
    require_attendant(session, deposit.bank, author)
    if not reason.strip():
        raise NotAllowed("a void needs a reason")
    if session.scalar(select(DepositVoid.id).where(DepositVoid.deposit_id == deposit.id)):
        raise AlreadyVoided(f"deposit {deposit.event_id} is already voided")
    void = DepositVoid(deposit_id=deposit.id, reason=reason, author=author)
    session.add(void)
    try:
        session.flush()
    except IntegrityError:  # another session voided it first (unique deposit_id)
        raise AlreadyVoided(f"deposit {deposit.event_id} is already voided") from None
    txn = f"void:{deposit.event_id}"
    memo = f"void: {reason}"
    bank_code = deposit.bank.code
    session.add_all(
        _money(
            txn,
            [
                (member_account(deposit.member.member_no), -deposit.amount_idr),
                (bank_purchase_account(bank_code), deposit.amount_idr),
            ],
            memo,
        )
    )
    session.add_all(
        _stock(
            txn,
            deposit.category_id,
            [
                (stock_account(bank_code), -deposit.net_g),
                (stock_flow_account("intake", bank_code), deposit.net_g),
            ],
            memo,
        )
    )
    session.flush()
    zone = ZoneInfo(deposit.bank.city.timezone)
    key = _day_key(deposit.measured_at, zone, deposit.bank_id, deposit.category_id, deposit.manual)
    _add_to_days(session, {key: [-deposit.net_g, -1]})
    return void


def void_deposit(session: Session, event_id: str, *, author: str, reason: str) -> DepositVoid:
    """Reverse deposit ``event_id`` with entries of its own (``void:{event_id}``); the deposit and
    its entries stay as they were. Refused: a second void of the same deposit
    (:class:`AlreadyVoided`), and a void that would take the member's available balance or the
    bank's stock below zero (:class:`InsufficientBalance`, :class:`InsufficientStock`: the money
    was withdrawn or the waste sold; settle that first). Commits."""
    with _transaction(session):
        deposit = _deposit_for_update(session, event_id)
        void = _void(session, deposit, author, reason)
        _check_available(session, deposit.member, f"voiding {event_id}")
        _check_stock(session, deposit.bank, deposit.category_id, f"voiding {event_id}")
    return void


def correct_deposit(
    session: Session,
    event_id: str,
    *,
    author: str,
    reason: str,
    net_g: int | None = None,
    category_code: str | None = None,
    member_no: str | None = None,
    quantity: int | None = None,
    rules: MoneyRules = DEFAULT_RULES,
) -> tuple[DepositVoid, AppliedDeposit]:
    """Void ``event_id`` and record, in the same transaction, the deposit it should have been: a
    manual deposit at the same bank and time, with what is given changed (weight, category,
    member, count) and priced at the price in force then. The void names its replacement.
    The replacement gets a new manual id (:data:`MANUAL_ID_PATTERN`) and is held to the manual
    limits in ``rules`` like any manual deposit.
    The balance and stock checks apply to the net effect. Commits."""

    def write(new_id: str) -> tuple[DepositVoid, AppliedDeposit]:
        old = _deposit_for_update(session, event_id)
        void = _void(session, old, author, reason)
        category = old.category if category_code is None else _category(session, category_code)
        fixed_quantity = quantity
        if fixed_quantity is None and category.id == old.category_id:
            fixed_quantity = old.quantity
        row, applied = _manual_plan(
            _References(session, rules),
            event_id=new_id,
            bank_code=old.bank.code,
            member_no=member_no or old.member.member_no,
            category_code=category.code,
            net_g=old.net_g if net_g is None else net_g,
            quantity=fixed_quantity,
            measured_at=old.measured_at,
            author=author,
            reason=f"correction of {event_id}: {reason}",
        )
        void.replacement_id = _write_deposit(session, row, applied).id
        session.flush()
        _check_available(session, old.member, f"correcting {event_id}")
        _check_stock(session, old.bank, old.category_id, f"correcting {event_id}")
        return void, applied

    return _with_manual_id(session, write)


def is_voided(session: Session, event_id: str) -> bool:
    return (
        session.scalar(
            select(DepositVoid.id)
            .join(Deposit, DepositVoid.deposit_id == Deposit.id)
            .where(Deposit.event_id == event_id)
        )
        is not None
    )


# ---- prices -----------------------------------------------------------------------------------


def set_price(
    session: Session,
    bank_code: str,
    category_code: str,
    price_idr: int,
    effective_from: datetime,
    *,
    author: str,
    rules: MoneyRules = DEFAULT_RULES,
) -> Price:
    """Set a bank's price for a category (per its unit) from ``effective_from`` until the next
    later price on its list, if any. Commits.

    Refused (:class:`PriceHistoryLocked`) when a deposit measured in that window was already
    priced from this list (the bank's own deposits and those of units using its prices): a
    deposit keeps the price it was made at, so a change may only start after the last deposit it
    would otherwise reprice. A price set earlier for the same instant is replaced only under the
    same rule (it priced nothing). A unit that uses its induk's prices has no list of its own.
    A price outside the category's range in ``rules`` (in the bank's city) is refused,
    :class:`OverLimit`.
    """
    if effective_from.tzinfo is None:
        raise ValueError("naive datetime given to the ledger; attach a time zone")
    if price_idr < 0:
        raise ValueError("a price is not negative")
    with _transaction(session):
        bank = _bank(session, bank_code)
        category = _category(session, category_code)
        if bank.use_parent_price:
            raise NotAllowed(f"{bank.code} buys at its induk's prices: set them there")
        require_attendant(session, bank, author)
        if breach := rules.city(bank.city.code).price_breach(
            category.code, category.unit, price_idr
        ):
            raise OverLimit(breach)
        _lock_bank(session, bank.id)
        later = session.scalar(
            select(func.min(Price.effective_from)).where(
                Price.bank_id == bank.id,
                Price.category_id == category.id,
                Price.effective_from > effective_from,
            )
        )
        users = select(Bank.id).where(
            (Bank.id == bank.id) | ((Bank.parent_id == bank.id) & Bank.use_parent_price)
        )
        priced = (
            select(Deposit.event_id, Deposit.measured_at)
            .where(
                Deposit.bank_id.in_(users),
                Deposit.category_id == category.id,
                Deposit.measured_at >= effective_from,
            )
            .order_by(Deposit.measured_at.desc())
            .limit(1)
        )
        if later is not None:
            priced = priced.where(Deposit.measured_at < later)
        hit = session.execute(priced).first()
        if hit is not None:
            raise PriceHistoryLocked(
                f"deposit {hit[0]} ({hit[1].isoformat()}) was priced from {bank.code}'s list for "
                f"{category.code}; a new price may start after {hit[1].isoformat()}"
            )
        row = session.scalar(
            select(Price).where(
                Price.bank_id == bank.id,
                Price.category_id == category.id,
                Price.effective_from == effective_from,
            )
        )
        if row is None:
            row = Price(bank_id=bank.id, category_id=category.id, effective_from=effective_from)
            session.add(row)
        row.price_per_kg_idr = price_idr
        row.created_by = author
        row.created_at = utcnow()
        session.flush()
    return row


# ---- withdrawals ------------------------------------------------------------------------------


def request_withdrawal(
    session: Session,
    member_no: str,
    amount_idr: int,
    method: str,
    *,
    requested_by: str,
    destination: str | None = None,
    at: datetime | None = None,
    rules: MoneyRules = DEFAULT_RULES,
) -> Withdrawal:
    """Ask to withdraw ``amount_idr``; the amount is reserved at once. Commits.

    Above the second-approval amount in ``rules`` (the member's city's) it is marked
    ``dual_control``: the one who asked may not approve it, and who pays it out is neither the
    one who asked nor the one who approved (:class:`SecondPersonRequired`).

    Refused below the bank's minimum (:class:`BelowMinimum`) and beyond the available balance,
    balance minus open withdrawals (:class:`InsufficientBalance`), so paying every open
    withdrawal can never take a balance below zero. The check and the insert are one step
    under the member's row lock (:func:`_lock_member`): on PostgreSQL concurrent requests for
    one member queue on ``SELECT ... FOR UPDATE``, and at READ COMMITTED (the default) each
    sums the journal and the open withdrawals after the one before it committed; at
    SERIALIZABLE a conflicting request fails with a serialization error, to be retried. On
    SQLite a writer engine's BEGIN IMMEDIATE runs one writer at a time; a reader engine's
    deferred transaction fails to upgrade ("database is locked") rather than write on a stale
    read. Deposits only raise a balance, so they need no lock.
    """
    if method not in set(PayoutMethod):
        raise NotAllowed(f"payout method {method!r}: cash, bank_transfer or ewallet")
    if method != PayoutMethod.CASH and not destination:
        raise NotAllowed(f"a {method} payout needs the account or e-wallet number")
    if not requested_by:
        raise NotAllowed("a withdrawal request names who asked")
    with _transaction(session):
        member = _member(session, member_no)
        _lock_member(session, member.id)
        bank = member.bank
        if amount_idr <= 0 or amount_idr < bank.min_withdrawal_idr:
            raise BelowMinimum(
                f"Rp{amount_idr} is below {bank.code}'s minimum withdrawal "
                f"(Rp{max(bank.min_withdrawal_idr, 1)})"
            )
        available = member_balance(session, member_no) - member_pending(session, member.id)
        if amount_idr > available:
            raise InsufficientBalance(
                f"nasabah {member_no} has Rp{available} available, asked Rp{amount_idr}"
            )
        withdrawal = Withdrawal(
            member_id=member.id,
            bank_id=bank.id,
            amount_idr=amount_idr,
            method=method,
            destination=destination,
            status=WithdrawalStatus.REQUESTED,
            requested_at=at or utcnow(),
            requested_by=requested_by,
            dual_control=rules.city(bank.city.code).needs_second_person(amount_idr),
        )
        session.add(withdrawal)
        session.flush()
    return withdrawal


_FROM: dict[WithdrawalStatus, tuple[WithdrawalStatus, ...]] = {
    WithdrawalStatus.APPROVED: (WithdrawalStatus.REQUESTED,),
    WithdrawalStatus.REJECTED: (WithdrawalStatus.REQUESTED,),
    WithdrawalStatus.CANCELLED: (WithdrawalStatus.REQUESTED, WithdrawalStatus.APPROVED),
    WithdrawalStatus.PAID: (WithdrawalStatus.APPROVED,),
}


def _move_withdrawal(
    session: Session,
    withdrawal_id: int,
    to: WithdrawalStatus,
    *,
    author: str,
    values: dict[str, Any],
    attendant: bool = True,
    not_by: Callable[[Withdrawal], Sequence[tuple[str | None, tuple[str, str]]]] | None = None,
) -> Withdrawal:
    """Move a withdrawal to ``to`` from one of the states that lead there. The move is a
    conditional UPDATE (``... WHERE status IN (...)``), so of two concurrent moves only one
    finds the row still in its old state: a withdrawal is never paid twice.

    ``not_by``: for a ``dual_control`` withdrawal, the people (and what they did) who may not
    make this move; the names it reads (who asked, who approved) never change while the
    withdrawal can still make it."""
    withdrawal = session.get(Withdrawal, withdrawal_id)
    if withdrawal is None:
        raise NotFound(f"unknown withdrawal {withdrawal_id}")
    if attendant:
        require_attendant(session, withdrawal.bank, author)
    elif not author:
        raise NotAllowed("name who does this")
    if not_by is not None and withdrawal.dual_control:
        for who, did in not_by(withdrawal):
            if who == author:
                from wastebank.passbook import rupiah  # lazily: passbook imports the ledger

                amount = rupiah(withdrawal.amount_idr)
                raise SecondPersonRequired(
                    f"penarikan {withdrawal_id} ({amount}) perlu tiga orang berbeda (yang "
                    f"mengajukan, menyetujui, membayar); {author} sudah {did[0]} / withdrawal "
                    f"{withdrawal_id} ({amount}) needs three different people (who asks, "
                    f"approves, pays out); {author} {did[1]} it"
                )
    result = session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal_id, Withdrawal.status.in_(_FROM[to]))
        .values(status=to, **values),
        execution_options={"synchronize_session": False},
    )
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        session.refresh(withdrawal)
        raise InvalidTransition(f"withdrawal {withdrawal_id} is {withdrawal.status}, not {to}-able")
    session.refresh(withdrawal)
    return withdrawal


_ASKED = ("mengajukannya", "asked for")
_APPROVED = ("menyetujuinya", "approved")


def approve_withdrawal(session: Session, withdrawal_id: int, *, author: str) -> Withdrawal:
    """requested -> approved, by an attendant of the member's bank (or its induk); for a
    ``dual_control`` withdrawal, not by the one who asked (:class:`SecondPersonRequired`).
    Commits."""
    with _transaction(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.APPROVED,
            author=author,
            values={"decided_by": author, "decided_at": utcnow()},
            not_by=lambda w: [(w.requested_by, _ASKED)],
        )
    return w


def reject_withdrawal(
    session: Session, withdrawal_id: int, *, author: str, reason: str
) -> Withdrawal:
    """requested -> rejected, with the reason; the reserved amount is available again."""
    if not reason.strip():
        raise NotAllowed("a rejection needs a reason")
    with _transaction(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.REJECTED,
            author=author,
            values={"decided_by": author, "decided_at": utcnow(), "reason": reason},
        )
    return w


def cancel_withdrawal(
    session: Session, withdrawal_id: int, *, author: str, reason: str
) -> Withdrawal:
    """requested or approved -> cancelled (by the member or staff, before it is paid)."""
    with _transaction(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.CANCELLED,
            author=author,
            values={"decided_by": author, "decided_at": utcnow(), "reason": reason},
            attendant=False,
        )
    return w


def pay_withdrawal(
    session: Session, withdrawal_id: int, *, author: str, payout_ref: str | None = None
) -> Withdrawal:
    """approved -> paid: the member's account is debited and the bank's funds for the payout
    method credited (``withdrawal:{id}``); for a ``dual_control`` withdrawal, by someone who
    neither asked for it nor approved it (:class:`SecondPersonRequired`). Commits."""
    with _transaction(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.PAID,
            author=author,
            values={"paid_by": author, "paid_at": utcnow(), "payout_ref": payout_ref},
            not_by=lambda w: [(w.requested_by, _ASKED), (w.decided_by, _APPROVED)],
        )
        session.add_all(
            _money(
                f"withdrawal:{w.id}",
                [
                    (member_account(w.member.member_no), -w.amount_idr),
                    (bank_funds_account(w.bank.code, w.method), w.amount_idr),
                ],
                f"{w.method} {payout_ref or ''}".strip(),
            )
        )
    return w


# ---- stock ------------------------------------------------------------------------------------


_FLOW_OF_KIND: dict[str, str] = {
    MovementKind.SALE: "sold",
    MovementKind.RESIDUE: "residue",
    MovementKind.BURNED: "burned",
}


def _movement_legs(
    kind: str, bank_code: str, grams: int, to_code: str | None, received_g: int | None
) -> list[tuple[str, int]]:
    """The stock legs of a movement (also what :func:`verify` expects of one)."""
    legs = [(stock_account(bank_code), -grams)]
    if kind == MovementKind.TRANSFER:
        received = grams if received_g is None else received_g
        legs.append((stock_account(to_code or "?"), received))
        if grams != received:
            legs.append((stock_flow_account("shrinkage", bank_code), grams - received))
    else:
        legs.append((stock_flow_account(_FLOW_OF_KIND.get(kind, kind), bank_code), grams))
    return legs


def _sale_legs(bank_code: str, revenue_idr: int | None) -> list[tuple[str, int]]:
    if not revenue_idr:
        return []
    return [
        (bank_funds_account(bank_code, PayoutMethod.CASH), -revenue_idr),
        (bank_sales_account(bank_code), revenue_idr),
    ]


def _take_out(
    session: Session,
    *,
    kind: MovementKind,
    bank: Bank,
    category: Category,
    grams: int,
    author: str,
    at: datetime | None,
    note: str,
    to_bank: Bank | None = None,
    received_g: int | None = None,
    collector: Collector | None = None,
    revenue_idr: int | None = None,
) -> StockMovement:
    require_attendant(session, bank, author)
    if grams <= 0 or (received_g is not None and received_g < 0):
        raise NotAllowed("a movement moves more than 0 g")
    if revenue_idr is not None and revenue_idr < 0:
        raise NotAllowed("revenue is not negative")
    _lock_bank(session, bank.id)
    movement = StockMovement(
        kind=kind,
        bank_id=bank.id,
        category_id=category.id,
        grams=grams,
        to_bank_id=to_bank.id if to_bank else None,
        received_g=received_g,
        collector_id=collector.id if collector else None,
        revenue_idr=revenue_idr,
        occurred_at=at or utcnow(),
        author=author,
        note=note,
    )
    session.add(movement)
    session.flush()
    txn = f"{kind}:{movement.id}"
    legs = _movement_legs(kind, bank.code, grams, to_bank.code if to_bank else None, received_g)
    session.add_all(_stock(txn, category.id, legs, note or kind))
    session.add_all(_money(txn, _sale_legs(bank.code, revenue_idr), note or kind))
    session.flush()
    _check_stock(session, bank, category.id, f"{kind} of {grams} g")
    return movement


def sell_stock(
    session: Session,
    bank_code: str,
    category_code: str,
    grams: int,
    *,
    collector_code: str,
    revenue_idr: int,
    author: str,
    at: datetime | None = None,
    note: str = "",
) -> StockMovement:
    """Sell ``grams`` of a category from a bank's stock to a pengepul for ``revenue_idr`` (paid
    into the bank's cash). Refused beyond the stock held. Commits."""
    with _transaction(session):
        collector = session.scalar(select(Collector).where(Collector.code == collector_code))
        if collector is None:
            raise NotFound(f"unknown pengepul {collector_code!r}")
        movement = _take_out(
            session,
            kind=MovementKind.SALE,
            bank=_bank(session, bank_code),
            category=_category(session, category_code),
            grams=grams,
            author=author,
            at=at,
            note=note,
            collector=collector,
            revenue_idr=revenue_idr,
        )
    return movement


def transfer_stock(
    session: Session,
    unit_code: str,
    category_code: str,
    grams: int,
    *,
    author: str,
    received_g: int | None = None,
    at: datetime | None = None,
    note: str = "",
) -> StockMovement:
    """Deliver ``grams`` of a unit's stock to its induk. ``received_g`` is what the induk weighed
    on arrival (default: ``grams``); the difference is recorded as the unit's shrinkage. Refused
    beyond the unit's stock, and for a bank without an induk. Commits."""
    with _transaction(session):
        unit = _bank(session, unit_code)
        if unit.parent is None:
            raise NotAllowed(f"{unit.code} has no induk to deliver to")
        movement = _take_out(
            session,
            kind=MovementKind.TRANSFER,
            bank=unit,
            category=_category(session, category_code),
            grams=grams,
            author=author,
            at=at,
            note=note,
            to_bank=unit.parent,
            received_g=received_g,
        )
    return movement


def dispose_stock(
    session: Session,
    bank_code: str,
    category_code: str,
    grams: int,
    kind: MovementKind,
    *,
    author: str,
    at: datetime | None = None,
    note: str = "",
) -> StockMovement:
    """Record stock leaving as residue (to the TPS/TPA) or burned, as such. Commits."""
    if kind not in (MovementKind.RESIDUE, MovementKind.BURNED):
        raise NotAllowed(f"dispose_stock records residue or burned waste, not {kind}")
    with _transaction(session):
        movement = _take_out(
            session,
            kind=kind,
            bank=_bank(session, bank_code),
            category=_category(session, category_code),
            grams=grams,
            author=author,
            at=at,
            note=note,
        )
    return movement


# ---- verify -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something :func:`verify` found wrong: which check, about what, and how."""

    check: str  # unbalanced | entries | negative | amount | hierarchy | summary
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


def verify(session: Session) -> list[Problem]:
    """Check the books; an empty list means they hold.

    - every money transaction's legs sum to zero (debits = credits), and every stock
      transaction's grams per category;
    - the journal and the stock journal hold exactly the entries the documents imply
      (deposits, voids, paid withdrawals, stock movements): an entry added, changed or removed
      behind the ledger's back shows up here, so balances and stock (sums of entries) are what
      the documents say;
    - no member balance below zero or below their open withdrawals, no stock below zero;
    - each deposit's amount is its count at its frozen price;
    - every bank's place in the induk/unit hierarchy is valid;
    - the daily summary (:class:`DepositDay`) holds, per local day, bank, category and basis,
      the sum and the count of the non-voided deposits, and its monthly roll-up
      (:class:`DepositMonth`) the same per local month (:func:`rebuild_deposit_days` mends
      both).

    Reads everything once (it is an audit, not a hot path).
    """
    problems: list[Problem] = []
    problems += _unbalanced(session)
    problems += _entries_match_documents(session)
    problems += _nothing_negative(session)
    problems += _deposit_amounts(session)
    problems += _hierarchy(session)
    problems += _deposit_days(session)
    return problems


def _unbalanced(session: Session) -> list[Problem]:
    money = session.execute(
        select(JournalEntry.txn_ref, func.sum(JournalEntry.amount_idr))
        .group_by(JournalEntry.txn_ref)
        .having(func.sum(JournalEntry.amount_idr) != 0)
    )
    out = [Problem("unbalanced", f"money {t}", f"legs sum to Rp{int(v)}") for t, v in money]
    stock = session.execute(
        select(StockEntry.txn_ref, StockEntry.category_id, func.sum(StockEntry.grams))
        .group_by(StockEntry.txn_ref, StockEntry.category_id)
        .having(func.sum(StockEntry.grams) != 0)
    )
    out += [
        Problem("unbalanced", f"stock {t} category {c}", f"legs sum to {int(g)} g")
        for t, c, g in stock
    ]
    return out


def _entries_match_documents(session: Session) -> list[Problem]:
    money: defaultdict[tuple[str, str], int] = defaultdict(int)
    stock: defaultdict[tuple[str, str, int], int] = defaultdict(int)

    def add(
        txn: str, category_id: int, legs: list[tuple[str, int]], grams: list[tuple[str, int]]
    ) -> None:
        for account, v in legs:
            money[txn, account] += v
        for account, g in grams:
            stock[txn, account, category_id] += g

    deposits = session.execute(
        select(
            Deposit.event_id,
            Member.member_no,
            Bank.code,
            Deposit.amount_idr,
            Deposit.category_id,
            Deposit.net_g,
            DepositVoid.id,
        )
        .join(Member, Deposit.member_id == Member.id)
        .join(Bank, Deposit.bank_id == Bank.id)
        .outerjoin(DepositVoid, DepositVoid.deposit_id == Deposit.id)
    )
    for event_id, member_no, bank_code, amount, category_id, net_g, void_id in deposits:
        sign_txns = [(1, f"deposit:{event_id}")]
        if void_id is not None:
            sign_txns.append((-1, f"void:{event_id}"))
        for sign, txn in sign_txns:
            add(
                txn,
                category_id,
                [
                    (member_account(member_no), sign * amount),
                    (bank_purchase_account(bank_code), -sign * amount),
                ],
                [
                    (stock_account(bank_code), sign * net_g),
                    (stock_flow_account("intake", bank_code), -sign * net_g),
                ],
            )
    paid = session.execute(
        select(Withdrawal.id, Member.member_no, Bank.code, Withdrawal.method, Withdrawal.amount_idr)
        .join(Member, Withdrawal.member_id == Member.id)
        .join(Bank, Withdrawal.bank_id == Bank.id)
        .where(Withdrawal.status == WithdrawalStatus.PAID)
    )
    for wid, member_no, bank_code, method, amount in paid:
        legs = [
            (member_account(member_no), -amount),
            (bank_funds_account(bank_code, method), amount),
        ]
        add(f"withdrawal:{wid}", 0, legs, [])
    codes: dict[int, str] = {i: c for i, c in session.execute(select(Bank.id, Bank.code))}
    for m in session.scalars(select(StockMovement)):
        bank_code = codes[m.bank_id]
        to_code = codes.get(m.to_bank_id) if m.to_bank_id is not None else None
        add(
            f"{m.kind}:{m.id}",
            m.category_id,
            _sale_legs(bank_code, m.revenue_idr) if m.kind == MovementKind.SALE else [],
            _movement_legs(m.kind, bank_code, m.grams, to_code, m.received_g),
        )

    out: list[Problem] = []
    found_money = {
        (t, a): int(v)
        for t, a, v in session.execute(
            select(
                JournalEntry.txn_ref, JournalEntry.account, func.sum(JournalEntry.amount_idr)
            ).group_by(JournalEntry.txn_ref, JournalEntry.account)
        )
    }
    for key in sorted(set(money) | set(found_money)):
        want, got = money.get(key, 0), found_money.get(key, 0)
        if want != got:
            out.append(
                Problem("entries", f"money {key[0]} {key[1]}", f"expected Rp{want}, found Rp{got}")
            )
    found_stock = {
        (t, a, c): int(g)
        for t, a, c, g in session.execute(
            select(
                StockEntry.txn_ref,
                StockEntry.account,
                StockEntry.category_id,
                func.sum(StockEntry.grams),
            ).group_by(StockEntry.txn_ref, StockEntry.account, StockEntry.category_id)
        )
    }
    for skey in sorted(set(stock) | set(found_stock)):
        want, got = stock.get(skey, 0), found_stock.get(skey, 0)
        if want != got:
            out.append(
                Problem(
                    "entries",
                    f"stock {skey[0]} {skey[1]} category {skey[2]}",
                    f"expected {want} g, found {got} g",
                )
            )
    return out


def _nothing_negative(session: Session) -> list[Problem]:
    out: list[Problem] = []
    balances: dict[str, int] = {
        account: int(total)
        for account, total in session.execute(
            select(JournalEntry.account, func.sum(JournalEntry.amount_idr))
            .where(JournalEntry.account.startswith("member:", autoescape=True))
            .group_by(JournalEntry.account)
        )
    }
    pending = session.execute(
        select(Member.member_no, func.sum(Withdrawal.amount_idr))
        .join(Member, Withdrawal.member_id == Member.id)
        .where(Withdrawal.status.in_(OPEN_WITHDRAWALS))
        .group_by(Member.member_no)
    )
    reserved = {member_account(no): int(v) for no, v in pending}
    for account in sorted(set(balances) | set(reserved)):
        balance = int(balances.get(account, 0))
        if balance < 0 or balance < reserved.get(account, 0):
            out.append(
                Problem(
                    "negative",
                    account,
                    f"balance Rp{balance}, open withdrawals Rp{reserved.get(account, 0)}",
                )
            )
    stock = session.execute(
        select(StockEntry.account, StockEntry.category_id, func.sum(StockEntry.grams))
        .where(StockEntry.account.startswith("stock:", autoescape=True))
        .group_by(StockEntry.account, StockEntry.category_id)
        .having(func.sum(StockEntry.grams) < 0)
    )
    out += [Problem("negative", f"{a} category {c}", f"{int(g)} g") for a, c, g in stock]
    return out


def _deposit_amounts(session: Session) -> list[Problem]:
    rows = session.execute(
        select(
            Deposit.event_id,
            Category.unit,
            Deposit.net_g,
            Deposit.quantity,
            Deposit.price_per_kg_idr,
            Deposit.amount_idr,
        ).join(Category, Deposit.category_id == Category.id)
    )
    out = []
    for event_id, unit, net_g, quantity, price, amount in rows:
        count = net_g if unit == Unit.KG or quantity is None else quantity
        want = amount_for_quantity(unit, count, price)
        if amount != want:
            out.append(
                Problem(
                    "amount", f"deposit {event_id}", f"Rp{amount}, its count prices at Rp{want}"
                )
            )
    return out


def _hierarchy(session: Session) -> list[Problem]:
    kinds: dict[int, str] = {i: k for i, k in session.execute(select(Bank.id, Bank.kind))}
    out = []
    for bank in session.scalars(select(Bank).order_by(Bank.code)):
        parent_kind = kinds.get(bank.parent_id) if bank.parent_id is not None else None
        problem = _hierarchy_problem(bank.kind, parent_kind, bank.use_parent_price)
        if problem is not None:
            out.append(Problem("hierarchy", f"bank {bank.code}", problem))
    return out


def verify_summaries(session: Session) -> list[Problem]:
    """The summary part of :func:`verify` alone: the daily summary and its monthly roll-up
    against the deposits (what :func:`rebuild_deposit_days` makes)."""
    return _deposit_days(session)


def _deposit_days(session: Session) -> list[Problem]:
    want = _day_totals(session)
    want_months: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for (day, bank_id, category_id, manual), (grams, count) in want.items():
        acc = want_months[day.replace(day=1), bank_id, category_id, manual]
        acc[0] += grams
        acc[1] += count
    banks: dict[int, str] = {i: c for i, c in session.execute(select(Bank.id, Bank.code))}
    categories: dict[int, str] = {
        i: c for i, c in session.execute(select(Category.id, Category.code))
    }
    out = []
    for table, name, wanted, label in (
        (DepositDay, "local_date", want, date.isoformat),
        (
            DepositMonth,
            "month",
            {k: (g, n) for k, (g, n) in want_months.items()},
            lambda d: d.isoformat()[:7],
        ),
    ):
        cols = cast(Table, table.__table__).c
        found = {
            (_as_date(day), b, c, bool(m)): (int(g), int(n))
            for day, b, c, m, g, n in session.execute(
                select(
                    cols[name],
                    cols.bank_id,
                    cols.category_id,
                    cols.manual,
                    cols.net_g,
                    cols.deposits,
                )
            )
        }
        for key in sorted(set(wanted) | set(found)):
            (want_g, want_n), (got_g, got_n) = wanted.get(key, (0, 0)), found.get(key, (0, 0))
            if (want_g, want_n) != (got_g, got_n):
                day, bank_id, category_id, manual = key
                out.append(
                    Problem(
                        "summary",
                        f"{table.__tablename__} {label(day)} {banks.get(bank_id, bank_id)} "
                        f"{categories.get(category_id, category_id)} "
                        f"{'estimated' if manual else 'measured'}",
                        f"expected {want_g} g in {want_n} deposits, found {got_g} g in {got_n}",
                    )
                )
    return out


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# ---- dead letters -----------------------------------------------------------------------------


class NewDeadLetter(NamedTuple):
    topic: str
    payload: bytes
    error: str
    reason: str = DeadLetterReason.INVALID
    event_id: str | None = None


def add_dead_letters(
    session: Session, rows: Sequence[NewDeadLetter | tuple[str, bytes, str]], *, commit: bool = True
) -> list[DeadLetter]:
    """Store (topic, raw payload, error[, reason, event id]) rows in one transaction."""
    added = [
        DeadLetter(
            topic=r.topic,
            payload=r.payload,
            error=r.error[:4000],
            reason=str(r.reason),
            event_id=r.event_id[:100] if r.event_id else None,
        )
        for r in (NewDeadLetter(*row) for row in rows)
    ]
    session.add_all(added)
    if commit:
        session.commit()
    return added


def add_dead_letter(
    session: Session,
    topic: str,
    payload: bytes,
    error: str,
    reason: str = DeadLetterReason.INVALID,
    event_id: str | None = None,
) -> int:
    (row,) = add_dead_letters(session, [NewDeadLetter(topic, payload, error, reason, event_id)])
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


RESOLVED_ID_PREFIX = "R-"
"""A conflict applied as a new deposit gets ``R-{dead letter id}``: issued by the server,
upper-case, so no device id can be it, and one dead letter can be applied only once."""


def deposit_by_event_id(session: Session, event_id: str) -> Deposit | None:
    return session.scalar(select(Deposit).where(Deposit.event_id == event_id))


def resolve_dead_letter(
    session: Session,
    dead_letter_id: int,
    *,
    apply: bool,
    reason: str,
    author: str,
    rules: MoneyRules = DEFAULT_RULES,
) -> tuple[DeadLetter, AppliedDeposit | None]:
    """Settle a dead letter that a replay cannot settle, once, with a reason (``author``, an
    operator, is recorded on it; the caller adds the audit entry in this transaction).

    ``apply``: a ``conflict`` becomes a deposit of its own, ``R-{id}``, priced like any other at
    its own time (and held to its scale's limit in ``rules``), with the reason on the deposit;
    an ``over_limit`` deposit is applied under its own event id, as the scale sent it: the
    operator vouches for the weight, so its scale's limit is not checked again. Otherwise it is
    discarded (any dead letter).
    The deposit its event id already named is never touched. The conflict's alert is cleared
    when no other conflict of that event id waits. Commits; raises :class:`NotFound`,
    :class:`InvalidTransition` (already settled, or applying what is not a conflict) or
    :class:`DepositRejected` (it cannot be applied, e.g. its card is unknown now)."""
    from wastebank import alerts

    if not reason.strip():
        raise DepositRejected("a resolution needs a reason")
    with _transaction(session):
        row = session.get(DeadLetter, dead_letter_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no dead letter #{dead_letter_id}")
        if row.resolved_at is not None or row.replayed_at is not None:
            raise InvalidTransition(f"dead letter #{dead_letter_id} is settled already")
        applied: AppliedDeposit | None = None
        if apply:
            if row.reason not in (DeadLetterReason.CONFLICT, DeadLetterReason.OVER_LIMIT):
                raise InvalidTransition(
                    f"dead letter #{dead_letter_id} is {row.reason}, not a conflict nor over a "
                    "limit: replay it after a fix, or discard it"
                )
            ev = DepositEvent.model_validate_json(row.payload)
            ref = _References(session, rules)
            if row.reason == DeadLetterReason.CONFLICT:
                new_id = f"{RESOLVED_ID_PREFIX}{row.id}"
                planned, applied = ref.plan(ev.model_copy(update={"event_id": new_id}))
            else:
                new_id = ev.event_id
                if ref.applied([new_id]):
                    raise InvalidTransition(f"deposit {new_id} is in the ledger already")
                planned, applied = ref.plan(ev, check_limits=False)
            planned.update(manual=False, reason=f"{ev.event_id}: {reason}", author=author[:64])
            _write_deposit(session, planned, applied)
            row.resolution = f"applied as {new_id}: {reason}"
        else:
            row.resolution = f"discarded: {reason}"
        row.resolved_at, row.resolved_by = utcnow(), author[:80]
        session.flush()
        if row.event_id and row.reason == DeadLetterReason.CONFLICT:
            waiting = session.scalar(
                select(func.count())
                .select_from(DeadLetter)
                .where(
                    DeadLetter.event_id == row.event_id,
                    DeadLetter.reason == DeadLetterReason.CONFLICT,
                    DeadLetter.resolved_at.is_(None),
                )
            )
            if not waiting:
                alerts.clear_alert(
                    session,
                    alerts.AlertCode.DEPOSIT_CONFLICT,
                    row.event_id,
                    by=author,
                    note=row.resolution,
                )
    return row, applied


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


# The login system's tables (users, login failures, the audit log) are the ledger's too: on
# ``Base.metadata`` wherever the ledger is, so migrations and their checks see them.
from wastebank import access as _access  # noqa: E402
from wastebank import alerts as _alerts  # noqa: E402, F401 - system_alert, likewise
from wastebank import reconcile as _reconcile  # noqa: E402, F401 - reconciliation_run, likewise
