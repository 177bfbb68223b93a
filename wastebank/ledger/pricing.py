"""Prices: what a quantity costs at a price, the price in force on a bank's list at a time, and
setting a price without rewriting history."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wastebank.formats import tanggal, zone_label
from wastebank.ledger.balances import lock_bank
from wastebank.ledger.errors import NotAllowed, OverLimit, PriceHistoryLocked, atomic
from wastebank.ledger.models import Bank, Category, Deposit, Price, Unit, utcnow
from wastebank.ledger.registry import bank_by_code, category_by_code, require_attendant
from wastebank.money_rules import DEFAULT_RULES, MoneyRules, amount_for


def amount_for_quantity(unit: str, quantity: int, price_per_unit_idr: int) -> int:
    """Integer Rupiah for ``quantity`` of a category counted in ``unit``: grams at a price per kg,
    millilitres at a price per litre (both rounded half up), or pieces at a price per piece."""
    if unit == Unit.PIECE:
        return quantity * price_per_unit_idr
    return amount_for(quantity, price_per_unit_idr)


PriceHistory = list[tuple[datetime, int]]
"""One category's prices on one bank's list, newest first: (in force from, price)."""


def price_history(session: Session, list_bank_id: int, category_id: int) -> PriceHistory:
    """The prices of ``category_id`` on the list of ``list_bank_id`` (a bank's own list: see
    :attr:`~wastebank.ledger.models.Bank.price_bank_id` for the list a bank buys at)."""
    rows = session.execute(
        select(Price.effective_from, Price.price_per_kg_idr)
        .where(Price.bank_id == list_bank_id, Price.category_id == category_id)
        .order_by(Price.effective_from.desc())
    ).all()
    return [(r[0], int(r[1])) for r in rows]


def in_force(history: PriceHistory, at: datetime) -> int | None:
    """The price in force at ``at``: the newest that took effect at or before it; None when
    none had yet. The one rule for a deposit's price, whether its history is read for one
    deposit (:func:`price_in_force`) or once for a batch (the ingester's)."""
    return next((price for since, price in history if since <= at), None)


def list_in_force(session: Session, bank: Bank, at: datetime) -> list[tuple[Category, Price]]:
    """Each category's price in force at ``at`` on the list ``bank`` buys at (its induk's for a
    unit that uses it), by category code: :func:`in_force`'s rule, the newest that took effect
    at or before ``at``, for the whole list in one query."""
    rows = session.execute(
        select(Price, Category)
        .join(Category, Price.category_id == Category.id)
        .where(Price.bank_id == bank.price_bank_id, Price.effective_from <= at)
        .order_by(Category.code, Price.effective_from.desc())
    )
    latest: dict[int, tuple[Category, Price]] = {}
    for price, category in rows:
        latest.setdefault(category.id, (category, price))
    return list(latest.values())


def price_in_force(session: Session, bank_id: int, category_id: int, at: datetime) -> int | None:
    """The price of ``category_id`` at ``bank_id`` at ``at``: from its induk's list when the bank
    uses its induk's prices."""
    bank = session.get(Bank, bank_id)
    owner = bank.price_bank_id if bank is not None else bank_id
    return in_force(price_history(session, owner, category_id), at)


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
    later price on its list, if any. The caller commits.

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
    with atomic(session):
        bank = bank_by_code(session, bank_code)
        category = category_by_code(session, category_code)
        if bank.use_parent_price:
            raise NotAllowed(f"{bank.code} buys at its induk's prices: set them there")
        require_attendant(session, bank, author)
        if breach := rules.city(bank.city.code).price_breach(
            category.code, category.unit, price_idr
        ):
            raise OverLimit(breach)
        lock_bank(session, bank.id)
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
            at = _local(hit[1], bank.city.timezone)
            raise PriceHistoryLocked(
                f"setoran {hit[0]} ({at}) sudah dihargai dengan daftar harga {bank.name} untuk "
                f"{category.name_id}; harga baru berlaku paling cepat setelah {at} / deposit "
                f"{hit[0]} ({at}) was priced from {bank.code}'s list for {category.code}; a new "
                f"price may start after {at}"
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


def _local(at: datetime, timezone: str) -> str:
    """``10 Nov 2026 09.30.15 WIT``: a deposit's time in its city's zone, to the second (a new
    price may start the second after it)."""
    tz = ZoneInfo(timezone)
    local = (at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo("UTC"))).astimezone(tz)
    return f"{tanggal(local.date())} {local:%H.%M.%S} {zone_label(tz, local)}"


def no_price(bank: Bank, category: Category, at: datetime) -> str:
    """Why a deposit at ``at`` cannot be priced: for the attendant (names, local time) and the
    operator (codes, the instant as sent), one sentence for every path that prices a deposit."""
    return (
        f"{bank.name} belum punya harga {category.name_id} pada "
        f"{_local(at, bank.city.timezone)} / bank {bank.code} has no price for "
        f"{category.code} at {at.isoformat()}"
    )
