"""Withdrawals: requested, approved (by a second person above a threshold), paid, rejected or
cancelled; the amount reserved from the request on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from wastebank.formats import rupiah
from wastebank.ledger.balances import (
    available,
    bank_funds_account,
    journal_rows,
    lock_member,
    member_account,
)
from wastebank.ledger.errors import (
    BelowMinimum,
    InsufficientBalance,
    InvalidTransition,
    NotAllowed,
    NotFound,
    SecondPersonRequired,
    atomic,
)
from wastebank.ledger.models import (
    OPEN_WITHDRAWALS,
    PayoutMethod,
    Withdrawal,
    WithdrawalStatus,
    utcnow,
)
from wastebank.ledger.registry import member_by_no, require_attendant
from wastebank.money_rules import DEFAULT_RULES, MoneyRules


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
    """Ask to withdraw ``amount_idr``; the amount is reserved at once. The caller commits.

    Above the second-approval amount in ``rules`` (the member's city's) it is marked
    ``dual_control``: the one who asked may not approve it, and who pays it out is neither the
    one who asked nor the one who approved (:class:`SecondPersonRequired`).

    Refused below the bank's minimum (:class:`BelowMinimum`) and beyond the available balance,
    balance minus open withdrawals (:class:`InsufficientBalance`), so paying every open
    withdrawal can never take a balance below zero. The check and the insert are one step
    under the member's row lock (:func:`lock_member`): on PostgreSQL concurrent requests for
    one member queue on ``SELECT ... FOR UPDATE``, and at READ COMMITTED (the default) each
    sums the journal and the open withdrawals after the one before it committed; at
    SERIALIZABLE a conflicting request fails with a serialization error, to be retried. On
    SQLite a writer engine's BEGIN IMMEDIATE runs one writer at a time; a reader engine's
    deferred transaction fails to upgrade ("database is locked") rather than write on a stale
    read. Deposits only raise a balance, so they need no lock.
    """
    if method not in set(PayoutMethod):
        raise NotAllowed(
            f"cara pembayaran {method!r} tidak dikenal: tunai, transfer bank atau dompet digital "
            f"/ payout method {method!r}: cash, bank_transfer or ewallet"
        )
    if method != PayoutMethod.CASH and not destination:
        raise NotAllowed(
            f"{METHOD_ID.get(method, method)} perlu nomor rekening atau dompet digital / "
            f"a {method} payout needs the account or e-wallet number"
        )
    if not requested_by:
        raise NotAllowed(
            "permintaan penarikan harus menyebut yang mengajukan / a withdrawal request names "
            "who asked"
        )
    with atomic(session):
        member = member_by_no(session, member_no)
        lock_member(session, member.id)
        bank = member.bank
        if amount_idr <= 0 or amount_idr < bank.min_withdrawal_idr:
            asked, least = rupiah(amount_idr), rupiah(max(bank.min_withdrawal_idr, 1))
            raise BelowMinimum(
                f"{asked} di bawah penarikan minimum {bank.name} ({least}) / {asked} is below "
                f"{bank.name}'s minimum withdrawal ({least})"
            )
        available_idr = available(session, member)
        if amount_idr > available_idr:
            can, asked = rupiah(available_idr), rupiah(amount_idr)
            raise InsufficientBalance(
                f"nasabah {member_no} dapat menarik {can}, diminta {asked} / member {member_no} "
                f"has {can} available, asked {asked}"
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
        raise NotFound(f"penarikan {withdrawal_id} tidak ada / unknown withdrawal {withdrawal_id}")
    if attendant:
        require_attendant(session, withdrawal.bank, author)
    elif not author:
        raise NotAllowed("sebutkan siapa yang melakukannya / name who does this")
    if not_by is not None and withdrawal.dual_control:
        for who, did in not_by(withdrawal):
            if who == author:
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
        raise InvalidTransition(not_movable(withdrawal_id, WithdrawalStatus(withdrawal.status), to))
    session.refresh(withdrawal)
    return withdrawal


STATUS_ID: dict[str, str] = {
    WithdrawalStatus.REQUESTED: "diajukan",
    WithdrawalStatus.APPROVED: "disetujui",
    WithdrawalStatus.PAID: "dibayar",
    WithdrawalStatus.REJECTED: "ditolak",
    WithdrawalStatus.CANCELLED: "dibatalkan",
}
"""A withdrawal's status in Bahasa Indonesia (the pages' words: api/web.py STATUS_TEXTS)."""
METHOD_ID: dict[str, str] = {
    PayoutMethod.CASH: "tunai",
    PayoutMethod.BANK_TRANSFER: "transfer bank",
    PayoutMethod.EWALLET: "dompet digital",
}


def not_movable(withdrawal_id: int, status: WithdrawalStatus, to: WithdrawalStatus) -> str:
    """Why a withdrawal in ``status`` cannot be moved ``to`` (Indonesian first)."""
    still = "masih" if status in OPEN_WITHDRAWALS else "sudah"
    return (
        f"penarikan {withdrawal_id} {still} {STATUS_ID[status]}, tidak bisa {STATUS_ID[to]} / "
        f"withdrawal {withdrawal_id} is {status}: it cannot be {to}"
    )


_ASKED = ("mengajukannya", "asked for")
_APPROVED = ("menyetujuinya", "approved")


def approve_withdrawal(session: Session, withdrawal_id: int, *, author: str) -> Withdrawal:
    """requested -> approved, by an attendant of the member's bank (or its induk); for a
    ``dual_control`` withdrawal, not by the one who asked (:class:`SecondPersonRequired`).
    The caller commits."""
    with atomic(session):
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
        raise NotAllowed("penolakan perlu alasan / a rejection needs a reason")
    with atomic(session):
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
    with atomic(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.CANCELLED,
            author=author,
            values={"decided_by": author, "decided_at": utcnow(), "reason": reason},
            attendant=False,
        )
    return w


def repeats_payment(w: Withdrawal, author: str, payout_ref: str | None) -> bool:
    """Whether paying ``w`` by ``author`` with ``payout_ref`` is the payment already recorded,
    asked again (a client that lost the answer, the gateway's queue sending once more): paid,
    by the same person, with the same non-empty reference. The gateway gives a cash payout its
    own receipt number as the reference, so a retry of one request matches and two requests
    never do; a transfer's reference is the transfer's own, so a match is that one transfer."""
    return (
        w.status == WithdrawalStatus.PAID
        and bool(payout_ref)
        and w.paid_by == author
        and w.payout_ref == payout_ref
    )


def pay_withdrawal(
    session: Session, withdrawal_id: int, *, author: str, payout_ref: str | None = None
) -> Withdrawal:
    """approved -> paid: the member's account is debited and the bank's funds for the payout
    method credited (``withdrawal:{id}``); for a ``dual_control`` withdrawal, by someone who
    neither asked for it nor approved it (:class:`SecondPersonRequired`). The caller
    commits.

    The same payment asked again (:func:`repeats_payment`: same author, same reference) returns
    the withdrawal as it was paid and writes nothing: never a second payment; any other pay of
    a paid withdrawal is :class:`InvalidTransition` (409)."""
    known = session.get(Withdrawal, withdrawal_id)
    if known is not None and repeats_payment(known, author, payout_ref):
        return known
    try:
        return _pay(session, withdrawal_id, author=author, payout_ref=payout_ref)
    except InvalidTransition:
        # a concurrent copy of this very request paid it between the read above and the move
        again = session.get(Withdrawal, withdrawal_id)
        if again is not None and repeats_payment(again, author, payout_ref):
            return again
        raise


def _pay(
    session: Session, withdrawal_id: int, *, author: str, payout_ref: str | None
) -> Withdrawal:
    with atomic(session):
        w = _move_withdrawal(
            session,
            withdrawal_id,
            WithdrawalStatus.PAID,
            author=author,
            values={"paid_by": author, "paid_at": utcnow(), "payout_ref": payout_ref},
            not_by=lambda w: [(w.requested_by, _ASKED), (w.decided_by, _APPROVED)],
        )
        session.add_all(
            journal_rows(
                f"withdrawal:{w.id}",
                [
                    (member_account(w.member.member_no), -w.amount_idr),
                    (bank_funds_account(w.bank.code, w.method), w.amount_idr),
                ],
                f"{w.method} {payout_ref or ''}".strip(),
            )
        )
    return w
