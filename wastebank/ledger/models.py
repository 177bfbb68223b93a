"""The ledger's tables: areas, banks, attendants, members, cards, categories, prices, deposits,
the money and stock journals, voids, the daily and monthly summaries, withdrawals, collectors,
stock movements and dead letters, on one declarative :class:`Base` whose ``metadata`` also holds
the tables of the modules built on the ledger (TPS, access, alerts, reconciliation; see
:func:`wastebank.tables.metadata`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


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
        the ingester loads them with the bank (see ``References.bank``)."""
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
    # Migration 0013: the member asked for their receipts and balance by SMS to ``phone``
    # (wastebank/sms/); off unless an attendant or admin turns it on (each SMS costs the bank).
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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
    for recyclables; IPCC DOC classes for organics). See docs/methods.md."""

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

    ``price_per_kg_idr`` is per the category's unit: per kg, per piece or per litre (the API and
    the deposit rows carry that name, so it stays).
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
    # The gateway's word on its clock when it stamped measured_at (migration 0014): False, not
    # synchronized since the gateway booted (the time may be hours off); None, not said (manual
    # deposits, older gateways).
    clock_synced: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
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
    few thousand rows instead of every day's (docs/scaling.md, "DLH reports"). A local month
    is a union of local days, so the two agree exactly: :func:`verify` checks both against the
    deposits, :func:`rebuild_deposit_days` makes both again."""

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
        UniqueConstraint("author", "idempotency_key"),
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
    # Migration 0012: how a sale was paid (``cash`` goes into the bank's cash drawer, which a day
    # close counts; None for other movements), and the client's retry key, unique per author,
    # so a sale queued offline and sent again is never recorded twice.
    payment_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
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


class DayClose(Base):
    """A bank's day closed by an attendant (migration 0012): the cash counted in the drawer
    against the cash the ledger expects there, and the difference, with who, when and why.

    The cash period runs from ``cash_from`` (the previous close's ``cash_until``; for a bank's
    first close, the start of the local day) to ``cash_until`` (the moment of the close, or the
    end of a past local day): expected = opening + cash in - cash out, where opening is the
    previous close's counted cash (or, at a first close, the float the attendant entered), and
    cash in and out are the journal's entries on the bank's cash account recorded in the period
    (sales paid in cash, withdrawals paid in cash). See :mod:`wastebank.ledger.days`.

    One close per bank and local day: ``revision`` 1, unique with them. Only an admin reopens a
    close (``reopened_*``, the latest close of the bank only); the day may then be closed again,
    as revision 2, and so on. Nothing is deleted."""

    __tablename__ = "day_close"
    __table_args__ = (
        UniqueConstraint("bank_id", "local_date", "revision"),
        CheckConstraint("counted_cash_idr >= 0", name="ck_day_close_counted"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id"), index=True)
    local_date: Mapped[date] = mapped_column(Date, doc="the day in the bank's city's zone")
    revision: Mapped[int] = mapped_column(Integer, default=1)
    cash_from: Mapped[datetime] = mapped_column(UtcDateTime)
    cash_until: Mapped[datetime] = mapped_column(UtcDateTime)
    opening_cash_idr: Mapped[int] = mapped_column(BigInteger)
    opening_source: Mapped[str] = mapped_column(String(16), doc="previous_close | entered")
    cash_in_idr: Mapped[int] = mapped_column(BigInteger)
    cash_out_idr: Mapped[int] = mapped_column(BigInteger)
    expected_cash_idr: Mapped[int] = mapped_column(BigInteger)
    counted_cash_idr: Mapped[int] = mapped_column(BigInteger)
    difference_idr: Mapped[int] = mapped_column(BigInteger, doc="counted - expected")
    note: Mapped[str] = mapped_column(Text, default="")
    closed_by: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    reopened_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    reopened_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reopen_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    bank: Mapped[Bank] = relationship()


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
    # Whole: an MQTT topic can be 65,535 bytes, and a topic longer than a bounded column would
    # be a DataError on PostgreSQL that stops the ingester (migration 0007).
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    # Nullable or with a server default: a migration adds them to a ledger that has rows.
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
    # Migration 0016: the message's whole size and SHA-256 (``payload`` keeps only the first
    # bytes of one over the payload limit: wastebank.ledger.deadletters), and how often the same
    # message came again while its row was unsettled (a retained one at each ingester start).
    # Null size and hash: a row from before 0016, whose payload is whole.
    payload_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    times_received: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_received_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    @property
    def truncated(self) -> bool:
        """Only the first bytes of the message are kept: it can be neither replayed nor applied."""
        return self.payload_size is not None and self.payload_size > len(self.payload)

    @property
    def current_error(self) -> str:
        """The reason it is still (or was last) rejected."""
        return self.last_error or self.error
