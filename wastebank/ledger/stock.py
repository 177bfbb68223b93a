"""Stock leaving a bank: sales to a pengepul, transfers from a unit to its induk, residue and
burned waste; and what a bank holds per category, and why (:func:`stock_lines`)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from wastebank import errors
from wastebank.formats import kg
from wastebank.ledger.balances import (
    bank_funds_account,
    bank_sales_account,
    check_stock,
    journal_rows,
    lock_bank,
    stock_account,
    stock_flow_account,
    stock_of,
    stock_rows,
)
from wastebank.ledger.errors import InsufficientStock, LedgerError, NotAllowed, NotFound, atomic
from wastebank.ledger.models import (
    Bank,
    Category,
    Collector,
    MovementKind,
    PayoutMethod,
    StockEntry,
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


class MovementKeyReused(LedgerError, errors.Conflict):
    """An author's idempotency key came again with another movement: the key names the one
    first recorded with it, so the second is refused, never recorded as a new one."""

    title = (
        "idempotency_key sudah dipakai untuk catatan lain / idempotency_key used for another record"
    )


def sale_legs(
    bank_code: str, revenue_idr: int | None, method: str | None = PayoutMethod.CASH
) -> list[tuple[str, int]]:
    """A sale's money: its revenue debits the bank's funds it was paid into (``cash``, the
    drawer a day close counts, unless the pengepul paid otherwise) and credits its sales."""
    if not revenue_idr:
        return []
    return [
        (bank_funds_account(bank_code, method or PayoutMethod.CASH), -revenue_idr),
        (bank_sales_account(bank_code), revenue_idr),
    ]


def movement_by_key(session: Session, author: str, key: str | None) -> StockMovement | None:
    """The movement ``author`` recorded under their idempotency ``key``, if any."""
    if key is None:
        return None
    return session.scalar(
        select(StockMovement).where(
            StockMovement.author == author, StockMovement.idempotency_key == key
        )
    )


def _repeat(session: Session, author: str, key: str | None, **wanted: Any) -> StockMovement | None:
    """A retry of a movement already recorded under ``key`` (the same content: returned, nothing
    written); the same key with other content is refused (:class:`MovementKeyReused`)."""
    done = movement_by_key(session, author, key)
    if done is None:
        return None
    differs = sorted(k for k, v in wanted.items() if getattr(done, k) != v)
    if differs:
        raise MovementKeyReused(
            f"kunci {key!r} milik {author} sudah dipakai catatan {done.kind} {done.id} yang "
            f"berbeda ({', '.join(differs)}) / key {key!r} of {author} names {done.kind} "
            f"{done.id}, which differs ({', '.join(differs)})"
        )
    return done


MOVEMENT_ID = {
    MovementKind.SALE: "penjualan",
    MovementKind.TRANSFER: "pengiriman ke induk",
    MovementKind.RESIDUE: "residu",
    MovementKind.BURNED: "pembakaran",
}
"""A movement's kind in Bahasa Indonesia, for the words of a refusal."""


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
    payment_method: str | None = None,
    idempotency_key: str | None = None,
) -> StockMovement:
    require_attendant(session, bank, author)
    if grams <= 0 or (received_g is not None and received_g < 0):
        raise NotAllowed("berat harus lebih dari 0 g / a movement moves more than 0 g")
    if revenue_idr is not None and revenue_idr < 0:
        raise NotAllowed("hasil penjualan tidak negatif / revenue is not negative")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 100:
        raise NotAllowed("idempotency key: 1-100 karakter / 1 to 100 characters")
    lock_bank(session, bank.id)
    # Under the bank's lock: of two retries at once, the second finds the first.
    content: dict[str, Any] = {  # what a retry under the same key must repeat
        "kind": kind,
        "bank_id": bank.id,
        "category_id": category.id,
        "grams": grams,
        "to_bank_id": to_bank.id if to_bank else None,
        "received_g": received_g,
        "collector_id": collector.id if collector else None,
        "revenue_idr": revenue_idr,
        "payment_method": payment_method,
    }
    done = _repeat(session, author, idempotency_key, **content)
    if done is not None:
        return done
    held = stock_of(session, bank.code, category.id)
    if grams > held:  # said here with names and kg; check_stock below stays the rule
        raise InsufficientStock(
            f"stok {category.name_id} di {bank.name} {kg(held)}, diminta {kg(grams)} / "
            f"{bank.name} holds {kg(held)} of {category.name_en}, asked {kg(grams)}"
        )
    movement = StockMovement(
        **content,
        idempotency_key=idempotency_key,
        occurred_at=at or utcnow(),
        author=author,
        note=note,
    )
    session.add(movement)
    session.flush()
    txn = f"{kind}:{movement.id}"
    legs = movement_legs(kind, bank.code, grams, to_bank.code if to_bank else None, received_g)
    session.add_all(stock_rows(txn, category.id, legs, note or kind))
    money = sale_legs(bank.code, revenue_idr, payment_method)
    session.add_all(journal_rows(txn, money, note or kind))
    session.flush()
    check_stock(
        session, bank, category.id, (f"{MOVEMENT_ID[kind]} {kg(grams)}", f"{kind} of {kg(grams)}")
    )
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
    payment_method: str = PayoutMethod.CASH,
    idempotency_key: str | None = None,
) -> StockMovement:
    """Sell ``grams`` of a category from a bank's stock to a pengepul for ``revenue_idr``, paid
    into the bank's ``payment_method`` funds (cash: its drawer). Refused beyond the stock held.
    The same author and ``idempotency_key`` again return the sale first recorded with it and
    write nothing (other content: :class:`MovementKeyReused`). The caller commits."""
    if payment_method not in set(PayoutMethod):
        raise NotAllowed(
            f"cara bayar {payment_method!r} tidak dikenal / payment method {payment_method!r}: "
            "cash, bank_transfer or ewallet"
        )
    with atomic(session):
        collector = session.scalar(select(Collector).where(Collector.code == collector_code))
        if collector is None:
            raise NotFound(
                f"pengepul {collector_code!r} tidak dikenal / unknown pengepul {collector_code!r}"
            )
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
            payment_method=payment_method,
            idempotency_key=idempotency_key,
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
    idempotency_key: str | None = None,
) -> StockMovement:
    """Deliver ``grams`` of a unit's stock to its induk. ``received_g`` is what the induk weighed
    on arrival (default: ``grams``); the difference is recorded as the unit's shrinkage. Refused
    beyond the unit's stock, and for a bank without an induk. ``idempotency_key`` as for
    :func:`sell_stock`. The caller commits."""
    with atomic(session):
        unit = bank_by_code(session, unit_code)
        if unit.parent is None:
            raise NotAllowed(f"{unit.name} tidak punya bank induk / {unit.name} has no induk")
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
            idempotency_key=idempotency_key,
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
    idempotency_key: str | None = None,
) -> StockMovement:
    """Record stock leaving as residue (to the TPS/TPA) or burned, as such. ``idempotency_key``
    as for :func:`sell_stock`. The caller commits."""
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
            idempotency_key=idempotency_key,
        )
    return movement


# ---- what a bank holds, and why ------------------------------------------------------------------


class StockLine(NamedTuple):
    """A category's stock at a bank, from its stock entries: what came in (members' deposits
    less voids; a unit's deliveries, at an induk) less what went out (sold, transferred to the
    induk, residue to the TPA, burned). ``held_g`` is the sum of them all, the very figure
    :func:`~wastebank.ledger.balances.bank_stock` and every check before a movement read."""

    category_code: str
    category_name: str
    deposited_g: int
    received_g: int
    sold_g: int
    transferred_g: int
    residue_g: int
    burned_g: int
    held_g: int

    @property
    def in_g(self) -> int:
        return self.deposited_g + self.received_g


# Each entry on a bank's stock account by the document its transaction names (deposits.py,
# manual.py, _take_out above): a transfer's leg is in at the induk (positive), out at the unit.
_SOURCES: tuple[tuple[str, str], ...] = (
    ("deposit:%", "deposited"),
    ("void:%", "deposited"),
    (f"{MovementKind.SALE}:%", "sold"),
    (f"{MovementKind.RESIDUE}:%", "residue"),
    (f"{MovementKind.BURNED}:%", "burned"),
)


def stock_lines(session: Session, bank_code: str) -> list[StockLine]:
    """The bank's stock per category (categories it never held are absent), each with where it
    came from and went: ``held = deposited + received - sold - transferred - residue -
    burned``, one query over the same entries as :func:`bank_stock`, so the two never differ.
    An entry of a kind this function does not know (none today) still counts in ``held_g``."""
    transfer = StockEntry.txn_ref.like(f"{MovementKind.TRANSFER}:%")
    source = case(
        *((StockEntry.txn_ref.like(prefix), name) for prefix, name in _SOURCES),
        (and_(transfer, StockEntry.grams > 0), "received"),
        (transfer, "transferred"),
        else_="other",
    )
    rows = session.execute(
        select(Category.code, Category.name_id, source, func.sum(StockEntry.grams))
        .join(Category, StockEntry.category_id == Category.id)
        .where(StockEntry.account == stock_account(bank_code))
        .group_by(Category.code, Category.name_id, source)
        .order_by(Category.code)
    )
    sums: defaultdict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for code, name, kind, grams in rows:
        sums[code, name][kind] = int(grams)
    return [
        StockLine(
            category_code=code,
            category_name=name,
            deposited_g=by.get("deposited", 0),
            received_g=by.get("received", 0),
            sold_g=-by.get("sold", 0),
            transferred_g=-by.get("transferred", 0),
            residue_g=-by.get("residue", 0),
            burned_g=-by.get("burned", 0),
            held_g=sum(by.values()),
        )
        for (code, name), by in sums.items()
    ]
