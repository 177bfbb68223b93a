"""Stock leaving a bank: sales to a pengepul, transfers from a unit to its induk, residue and
burned waste."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank.ledger.balances import (
    bank_funds_account,
    bank_sales_account,
    check_stock,
    journal_rows,
    lock_bank,
    stock_account,
    stock_flow_account,
    stock_rows,
)
from wastebank.ledger.errors import NotAllowed, NotFound, atomic
from wastebank.ledger.models import (
    Bank,
    Category,
    Collector,
    MovementKind,
    PayoutMethod,
    StockMovement,
    utcnow,
)
from wastebank.ledger.registry import bank_by_code, category_by_code, require_attendant

_FLOW_OF_KIND: dict[str, str] = {
    MovementKind.SALE: "sold",
    MovementKind.RESIDUE: "residue",
    MovementKind.BURNED: "burned",
}


def movement_legs(
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


def sale_legs(bank_code: str, revenue_idr: int | None) -> list[tuple[str, int]]:
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
    lock_bank(session, bank.id)
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
    legs = movement_legs(kind, bank.code, grams, to_bank.code if to_bank else None, received_g)
    session.add_all(stock_rows(txn, category.id, legs, note or kind))
    session.add_all(journal_rows(txn, sale_legs(bank.code, revenue_idr), note or kind))
    session.flush()
    check_stock(session, bank, category.id, f"{kind} of {grams} g")
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
    into the bank's cash). Refused beyond the stock held. The caller commits."""
    with atomic(session):
        collector = session.scalar(select(Collector).where(Collector.code == collector_code))
        if collector is None:
            raise NotFound(f"unknown pengepul {collector_code!r}")
        movement = _take_out(
            session,
            kind=MovementKind.SALE,
            bank=bank_by_code(session, bank_code),
            category=category_by_code(session, category_code),
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
    beyond the unit's stock, and for a bank without an induk. The caller commits."""
    with atomic(session):
        unit = bank_by_code(session, unit_code)
        if unit.parent is None:
            raise NotAllowed(f"{unit.code} has no induk to deliver to")
        movement = _take_out(
            session,
            kind=MovementKind.TRANSFER,
            bank=unit,
            category=category_by_code(session, category_code),
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
    """Record stock leaving as residue (to the TPS/TPA) or burned, as such. The caller
    commits."""
    if kind not in (MovementKind.RESIDUE, MovementKind.BURNED):
        raise NotAllowed(f"dispose_stock records residue or burned waste, not {kind}")
    with atomic(session):
        movement = _take_out(
            session,
            kind=kind,
            bank=bank_by_code(session, bank_code),
            category=category_by_code(session, category_code),
            grams=grams,
            author=author,
            at=at,
            note=note,
        )
    return movement
