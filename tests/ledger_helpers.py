"""Ledger and access reads and writes that only tests need: shorthands over the production
functions (one deposit, one dead letter) and questions the tests ask of the books. Each asks the
production code the question, so the rule it checks stays in one place."""

from __future__ import annotations

from datetime import datetime
from itertools import count

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import deposit_event
from wastebank import access, ledger
from wastebank.ledger import (
    AppliedDeposit,
    Bank,
    DeadLetterReason,
    Deposit,
    DepositConflict,
    DepositRejected,
    DepositVoid,
    NewDeadLetter,
)
from wastebank.ledger.registry import bank_by_code
from wastebank.messages import DepositEvent
from wastebank.money_rules import DEFAULT_RULES, MoneyRules


def apply_deposit(
    session: Session, ev: DepositEvent, *, rules: MoneyRules = DEFAULT_RULES
) -> AppliedDeposit:
    """Apply ``ev`` once; the caller commits. A replay of an applied event returns a DUPLICATE
    outcome; a deposit that cannot be applied raises :class:`DepositRejected`
    (:class:`DepositConflict`: its id is known with other content; :class:`DepositOverLimit`:
    heavier than its scale's limit in ``rules``) and changes nothing."""
    (result,) = ledger.apply_deposits(session, [ev], rules=rules)
    if isinstance(result, DepositRejected | DepositConflict):
        raise result
    return result


_scale_seq = count(1_000_000)  # above the seqs tests pick by hand


def scale(
    session: Session,
    at: datetime,
    net_g: int,
    *,
    category: str = "pet",
    card: str = "04A1B2C3D4",  # AMB-0001 at bs-batu-merah in the demo city
    bank: str = "bs-batu-merah",
) -> str:
    """A deposit weighed on a scale (measured) at ``at``, applied and committed; its event id."""
    ev = deposit_event(
        next(_scale_seq), net_g=net_g, card=card, bank=bank, category=category, at=at
    )
    ledger.apply_deposits(session, [ev])
    session.commit()
    return ev.event_id


def journal_is_balanced(session: Session) -> bool:
    """Every money transaction's legs sum to zero, as :func:`ledger.verify` checks it."""
    return not [
        p
        for p in ledger.verify(session)
        if p.check == "unbalanced" and p.subject.startswith("money ")
    ]


def bank_units(session: Session, induk_code: str) -> list[Bank]:
    """The units under an induk, by code."""
    parent = bank_by_code(session, induk_code)
    return list(
        session.scalars(select(Bank).where(Bank.parent_id == parent.id).order_by(Bank.code))
    )


def member_available(session: Session, member_no: str) -> int:
    """What the member may still withdraw, as the API's balance read computes it."""
    account = ledger.member_account_summary(session, member_no)
    if account is None:
        raise ledger.NotFound(f"unknown member {member_no!r}")
    return account.available_idr


def is_voided(session: Session, event_id: str) -> bool:
    return (
        session.scalar(
            select(DepositVoid.id)
            .join(Deposit, DepositVoid.deposit_id == Deposit.id)
            .where(Deposit.event_id == event_id)
        )
        is not None
    )


def add_dead_letter(
    session: Session,
    topic: str,
    payload: bytes,
    error: str,
    reason: str = DeadLetterReason.INVALID,
    event_id: str | None = None,
) -> int:
    """One dead letter through :func:`ledger.add_dead_letters`; its id. Flushes only."""
    (row,) = ledger.add_dead_letters(
        session, [NewDeadLetter(topic, payload, error, reason, event_id)]
    )
    return row.id


def read_token(token: str, key: bytes, kind: access.TokenKind) -> tuple[int, int]:
    """(user id, token version) of :func:`access.read_claims`."""
    claims = access.read_claims(token, key, kind)
    return claims.user_id, claims.version
