"""Reference data: areas, banks and their hierarchy, attendants and who may act at a bank,
members (their NIK kept only as a keyed hash), cards and collectors; looking them up."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated

from msgspec import Meta
from sqlalchemy import Boolean, Integer, String, column, select, table
from sqlalchemy.orm import Session

from wastebank.config import SecretStr, WastebankSettings, check_key
from wastebank.ledger.errors import NotAllowed, NotFound
from wastebank.ledger.models import (
    Attendant,
    Bank,
    BankKind,
    Card,
    Category,
    City,
    Collector,
    Kelurahan,
    Member,
    MemberKind,
)


def get_member(session: Session, member_no: str) -> Member | None:
    return session.scalar(select(Member).where(Member.member_no == member_no))


def first_city(session: Session) -> City | None:
    return session.scalar(select(City).order_by(City.id).limit(1))


class MemberPrivacySettings(WastebankSettings, kw_only=True):
    """The secret key of the NIK hash (see :func:`hash_nik`)."""

    nik_key: Annotated[
        SecretStr | None,
        Meta(
            description="HMAC key for NIK hashes (WASTEBANK_NIK_KEY), at least 32 random "
            "characters "
            "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'`); kept outside the "
            "ledger database and its backups. Unset: NIKs cannot be recorded."
        ),
    ] = None

    def __post_init__(self) -> None:
        check_key("nik_key", self.nik_key)
        super().__post_init__()

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


def hierarchy_problem(kind: str, parent_kind: str | None, use_parent_price: bool) -> str | None:
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
    problem = hierarchy_problem(kind, parent.kind if parent else None, use_parent_price)
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
    if not author or (found is None and not is_admin_author(session, author)):
        raise NotAllowed(f"{author!r} is not an attendant of {bank.code}")


# The login system's users (:class:`wastebank.access.models.User`), read by table and column
# names: the ledger lets an active admin act at any bank and knows nothing else of logins, so it
# needs nothing of wastebank.access, which is built on the ledger. tests/test_ledger_package.py
# checks these names against the model.
_APP_USER = table(
    "app_user",
    column("id", Integer),
    column("username", String),
    column("role", String),
    column("active", Boolean),
)
ADMIN_ROLE = "admin"  # wastebank.access.Role.ADMIN


def is_admin_author(session: Session, author: str) -> bool:
    """Whether ``author`` is an active admin's username (admins may act at any bank)."""
    u = _APP_USER.c
    return bool(
        author
        and session.scalar(select(u.id).where(u.username == author, u.role == ADMIN_ROLE, u.active))
    )


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


def bank_by_code(session: Session, code: str) -> Bank:
    bank = session.scalar(select(Bank).where(Bank.code == code))
    if bank is None:
        raise NotFound(f"unknown bank {code!r}")
    return bank


def category_by_code(session: Session, code: str) -> Category:
    category = session.scalar(select(Category).where(Category.code == code))
    if category is None:
        raise NotFound(f"unknown category {code!r}")
    return category


def member_by_no(session: Session, member_no: str) -> Member:
    member = get_member(session, member_no)
    if member is None:
        raise NotFound(f"unknown member {member_no!r}")
    return member
