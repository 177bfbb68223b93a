"""Queueing SMS receipts in the caller's transaction: the edges call these right where the money
moves (the ingester's batch that applies deposits, the API request that pays a withdrawal), so
the receipt is kept exactly when the deposit or the payment is, and a deposit delivered again
(a duplicate to the ledger) queues nothing. Nothing here commits.

Only members with ``sms_opt_in`` get one, and only on an Indonesian mobile number
(:func:`wastebank.sms.numbers.mobile`). A member who opted in with a phone that cannot take an
SMS (none, a landline, a foreign number) gets a row marked ``failed`` with the reason: kept for
the attendant to see, never silently dropped, never sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from wastebank import ledger
from wastebank.sms import numbers, texts
from wastebank.sms.models import SmsKind, SmsMessage, SmsStatus

CHUNK = 500  # event ids per query: far below any database's limit on bound parameters
NO_NUMBER = (
    "bukan nomor HP Indonesia (08..., 62... atau +62...): tidak dikirim / "
    "not an Indonesian mobile number: not sent"
)


def zone_of(bank: ledger.Bank) -> ZoneInfo:
    return ZoneInfo(bank.city.timezone)


def add_message(
    session: Session, member: ledger.Member, kind: SmsKind, reference: str, text: str
) -> SmsMessage:
    """One message for ``member`` (queued, or failed at once when their phone is not a
    mobile number), added to the session and flushed (its id is known)."""
    phone = numbers.mobile(member.phone)
    msg = SmsMessage(
        member_id=member.id,
        kind=kind,
        reference=reference,
        phone=phone or (member.phone or "")[:32],
        text=text,
        status=SmsStatus.QUEUED if phone else SmsStatus.FAILED,
        error=None if phone else NO_NUMBER,
        created_at=ledger.utcnow(),
    )
    session.add(msg)
    session.flush()
    return msg


def queue_deposits(session: Session, event_ids: Sequence[str]) -> list[SmsMessage]:
    """A receipt for each of these deposits (just applied, in this transaction) whose member
    opted in, with the balance right after it: the member's balance less what their later
    deposits among ``event_ids`` added, so two deposits in one batch read as two steps."""
    rows: list[ledger.Deposit] = []
    for start in range(0, len(event_ids), CHUNK):
        rows.extend(
            session.scalars(
                select(ledger.Deposit)
                .join(ledger.Member, ledger.Member.id == ledger.Deposit.member_id)
                .where(
                    ledger.Deposit.event_id.in_(event_ids[start : start + CHUNK]),
                    ledger.Member.sms_opt_in.is_(True),
                )
                .options(
                    joinedload(ledger.Deposit.member),
                    joinedload(ledger.Deposit.category),
                    joinedload(ledger.Deposit.bank).joinedload(ledger.Bank.city),
                )
            )
        )
    if not rows:
        return []
    balances = ledger.member_balances(session, {d.member.member_no for d in rows})
    order = {event_id: i for i, event_id in enumerate(event_ids)}
    later: dict[int, int] = defaultdict(int)  # member id -> Rupiah of their later deposits
    out = []
    for d in sorted(rows, key=lambda d: order[d.event_id], reverse=True):
        after = balances.get(d.member.member_no, 0) - later[d.member_id]
        later[d.member_id] += d.amount_idr
        text = texts.deposit_text(
            bank=d.bank.name,
            category=d.category.name_id,
            unit=d.category.unit,
            net_g=d.net_g,
            quantity=d.quantity,
            amount_idr=d.amount_idr,
            at=d.measured_at,
            tz=zone_of(d.bank),
            balance_idr=after,
        )
        out.append(add_message(session, d.member, SmsKind.DEPOSIT, d.event_id, text))
    return out


def queue_withdrawal(session: Session, withdrawal: ledger.Withdrawal) -> SmsMessage | None:
    """The receipt of a withdrawal just paid (in this transaction), if its member opted in."""
    member = withdrawal.member
    if not member.sms_opt_in:
        return None
    paid_at: datetime = withdrawal.paid_at or ledger.utcnow()
    text = texts.withdrawal_text(
        bank=withdrawal.bank.name,
        amount_idr=withdrawal.amount_idr,
        method=withdrawal.method,
        at=paid_at,
        tz=zone_of(withdrawal.bank),
        balance_idr=ledger.member_balance(session, member.member_no),
    )
    return add_message(session, member, SmsKind.WITHDRAWAL, f"withdrawal:{withdrawal.id}", text)


def opted_in_with(session: Session, phone: str) -> tuple[list[ledger.Member], bool]:
    """The opted-in members whose phone is ``phone`` (normalized), and whether any member at
    all (opted in or not) has it."""
    candidates = session.scalars(
        select(ledger.Member)
        .where(ledger.Member.phone.like(f"%{numbers.tail(phone)}"))
        .options(joinedload(ledger.Member.bank).joinedload(ledger.Bank.city))
    ).all()
    same = [m for m in candidates if numbers.normalize(m.phone) == phone]
    return [m for m in same if m.sms_opt_in], bool(same)
