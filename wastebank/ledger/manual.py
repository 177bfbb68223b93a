"""What attendants enter by hand: manual deposits (with server-issued ids and idempotency keys),
voids and corrections."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wastebank.ledger.applied import AppliedDeposit, Outcome
from wastebank.ledger.balances import (
    bank_purchase_account,
    check_available,
    check_stock,
    journal_rows,
    lock_bank,
    lock_member,
    member_account,
    stock_account,
    stock_flow_account,
    stock_rows,
)
from wastebank.ledger.deposits import References, write_deposit
from wastebank.ledger.errors import (
    AlreadyVoided,
    DepositOverLimit,
    DepositRejected,
    IdempotencyKeyReused,
    NotAllowed,
    NotFound,
    atomic,
)
from wastebank.ledger.models import Category, Deposit, DepositVoid, Unit, utcnow
from wastebank.ledger.pricing import amount_for_quantity, no_price
from wastebank.ledger.registry import category_by_code, get_member, require_attendant
from wastebank.ledger.summary import add_to_days, local_day_key
from wastebank.money_rules import DEFAULT_RULES, MoneyRules


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
    ref: References,
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
        raise DepositRejected(no_price(bank, category, measured_at))
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


MANUAL_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32, upper-case: no I, L, O, U, so an id read over the phone is not misheard."""
MANUAL_ID_PATTERN = r"^M-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"
"""A manual deposit's id, always issued by the server (:func:`new_manual_id`): ``M-XXXX-XXXX``,
8 random characters of :data:`MANUAL_ID_ALPHABET` (40 bits) grouped 4-4 for reading over the
phone. Upper-case, it never matches a device's id (``{gateway}.{install}.{seq}`` or the older
``{gateway}-{seq}``, lower-case: :data:`wastebank.messages.EVENT_ID_PATTERN`), so no manual
deposit can take the id of a scale deposit still on its way. Older ``manual-<32 hex>`` ids
stay in the ledger as they are. A client never chooses the id: its retries
carry an ``idempotency_key`` instead (:func:`record_manual_deposit`)."""
MANUAL_ID_ATTEMPTS = 5
"""Draws of a manual id before a unique-constraint refusal is no longer taken for a collision."""

_T = TypeVar("_T")


def new_manual_id() -> str:
    """A new manual deposit id (:data:`MANUAL_ID_PATTERN`), from :mod:`secrets`."""
    chars = "".join(secrets.choice(MANUAL_ID_ALPHABET) for _ in range(8))
    return f"M-{chars[:4]}-{chars[4:]}"


def _with_manual_id(session: Session, write: Callable[[str], _T]) -> _T:
    """``write(id)`` in a savepoint (:func:`atomic`) with a new manual id; run again from the
    start with a new id when a unique constraint refuses it: the id was taken (a 1 in 2**40
    chance per manual deposit in the ledger), or a concurrent retry with the same idempotency
    key got there first, which the next run finds and answers (its row is committed: the
    unique index made us wait for it)."""
    for attempt in range(1, MANUAL_ID_ATTEMPTS + 1):
        try:
            with atomic(session):
                return write(new_manual_id())
        except IntegrityError:
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
    given; not the reason) is refused with :class:`IdempotencyKeyReused`. The caller commits;
    raises
    :class:`DepositRejected` (or :class:`NotAllowed`) and writes nothing when it cannot apply:
    :class:`DepositOverLimit` beyond the manual weight or amount in ``rules``."""
    if measured_at is not None and measured_at.tzinfo is None:
        raise ValueError("naive datetime given to the ledger; attach a time zone")
    if idempotency_key is not None and not 0 < len(idempotency_key) <= 100:
        raise DepositRejected("an idempotency key has 1 to 100 characters")

    def write(event_id: str) -> AppliedDeposit:
        ref = References(session, rules)
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
        write_deposit(session, row, applied)
        return applied

    return _with_manual_id(session, write)


def _deposit_for_update(session: Session, event_id: str) -> Deposit:
    """The deposit, with its member's and its bank's rows locked (in that order)."""
    deposit = session.scalar(select(Deposit).where(Deposit.event_id == event_id))
    if deposit is None:
        raise NotFound(f"unknown deposit {event_id!r}")
    lock_member(session, deposit.member_id)
    lock_bank(session, deposit.bank_id)
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
        journal_rows(
            txn,
            [
                (member_account(deposit.member.member_no), -deposit.amount_idr),
                (bank_purchase_account(bank_code), deposit.amount_idr),
            ],
            memo,
        )
    )
    session.add_all(
        stock_rows(
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
    key = local_day_key(
        deposit.measured_at, zone, deposit.bank_id, deposit.category_id, deposit.manual
    )
    add_to_days(session, {key: [-deposit.net_g, -1]})
    return void


def void_deposit(session: Session, event_id: str, *, author: str, reason: str) -> DepositVoid:
    """Reverse deposit ``event_id`` with entries of its own (``void:{event_id}``); the deposit and
    its entries stay as they were. Refused: a second void of the same deposit
    (:class:`AlreadyVoided`), and a void that would take the member's available balance or the
    bank's stock below zero (:class:`InsufficientBalance`, :class:`InsufficientStock`: the money
    was withdrawn or the waste sold; settle that first). The caller commits."""
    with atomic(session):
        deposit = _deposit_for_update(session, event_id)
        void = _void(session, deposit, author, reason)
        check_available(session, deposit.member, (f"pembatalan {event_id}", f"voiding {event_id}"))
        check_stock(
            session,
            deposit.bank,
            deposit.category_id,
            (f"pembatalan {event_id}", f"voiding {event_id}"),
        )
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
    The balance and stock checks apply to the net effect. The caller commits."""

    def write(new_id: str) -> tuple[DepositVoid, AppliedDeposit]:
        old = _deposit_for_update(session, event_id)
        void = _void(session, old, author, reason)
        category = (
            old.category if category_code is None else category_by_code(session, category_code)
        )
        fixed_quantity = quantity
        if fixed_quantity is None and category.id == old.category_id:
            fixed_quantity = old.quantity
        row, applied = _manual_plan(
            References(session, rules),
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
        void.replacement_id = write_deposit(session, row, applied).id
        session.flush()
        check_available(session, old.member, (f"koreksi {event_id}", f"correcting {event_id}"))
        check_stock(
            session, old.bank, old.category_id, (f"koreksi {event_id}", f"correcting {event_id}")
        )
        return void, applied

    return _with_manual_id(session, write)
