"""A member's data (UU 27/2022 on personal data protection: the right of access): everything the
ledger holds about them, with their whole passbook."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.passbook.statements import Statement, city_zone, statement


class CardOut(BaseModel):
    uid: str


class ProfileOut(BaseModel):
    member_no: str
    name: str
    kind: str
    phone: str | None
    bank_code: str
    bank_name: str
    kelurahan: str | None
    kecamatan: str | None
    rt: str | None
    rw: str | None
    # The NIK is never stored: only a keyed hash to find a second registration. Whether one was
    # recorded is part of the data held; the hash itself is no use to the member and stays in.
    nik_recorded: bool


class DepositOut(BaseModel):
    event_id: str
    bank_code: str
    category_code: str
    net_g: int
    tare_g: int
    quantity: int | None
    price_idr: int
    amount_idr: int
    measured_at: AwareDatetime
    recorded_at: AwareDatetime
    gateway_id: str
    scale_id: str
    flow: str
    manual: bool
    reason: str | None
    author: str | None
    voided_at: AwareDatetime | None
    void_reason: str | None
    replaced_by: str | None  # a correction's new deposit


class WithdrawalOut(BaseModel):
    id: int
    amount_idr: int
    method: str
    destination: str | None
    status: str
    requested_at: AwareDatetime
    requested_by: str
    decided_at: AwareDatetime | None
    reason: str | None
    paid_at: AwareDatetime | None
    payout_ref: str | None


class MemberData(BaseModel):
    """Everything the ledger holds about one member."""

    profile: ProfileOut
    cards: list[CardOut]
    deposits: list[DepositOut]
    withdrawals: list[WithdrawalOut]
    statement: Statement
    exported_at: AwareDatetime


def member_data(session: Session, member_no: str, *, now: datetime | None = None) -> MemberData:
    """What the ledger holds about ``member_no`` (UU 27/2022, the right of access): profile,
    cards, every deposit (with its void) and withdrawal, and the whole passbook. Raises
    :class:`wastebank.ledger.NotFound` for an unknown member."""
    member = ledger.get_member(session, member_no)
    if member is None:
        raise ledger.NotFound(f"unknown member {member_no!r}")
    now = now or ledger.utcnow()
    tz = city_zone(member)
    kelurahan = member.kelurahan
    replacement = ledger.Deposit.__table__.alias("replacement")
    deposits = session.execute(
        select(ledger.Deposit, ledger.Category.code, ledger.DepositVoid, replacement.c.event_id)
        .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
        .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
        .outerjoin(replacement, replacement.c.id == ledger.DepositVoid.replacement_id)
        .where(ledger.Deposit.member_id == member.id)
        .order_by(ledger.Deposit.measured_at, ledger.Deposit.id)
    ).all()
    withdrawals = session.scalars(
        select(ledger.Withdrawal)
        .where(ledger.Withdrawal.member_id == member.id)
        .order_by(ledger.Withdrawal.requested_at, ledger.Withdrawal.id)
    ).all()
    cards = session.scalars(
        select(ledger.Card.uid).where(ledger.Card.member_id == member.id).order_by(ledger.Card.uid)
    ).all()

    def local(at: datetime | None) -> datetime | None:
        return at.astimezone(tz) if at is not None else None

    return MemberData(
        profile=ProfileOut(
            member_no=member.member_no,
            name=member.name,
            kind=member.kind,
            phone=member.phone,
            bank_code=member.bank.code,
            bank_name=member.bank.name,
            kelurahan=kelurahan.name if kelurahan else None,
            kecamatan=kelurahan.kecamatan.name if kelurahan else None,
            rt=member.rt,
            rw=member.rw,
            nik_recorded=member.nik_hash is not None,
        ),
        cards=[CardOut(uid=uid) for uid in cards],
        deposits=[
            DepositOut(
                event_id=d.event_id,
                bank_code=d.bank.code,
                category_code=code,
                net_g=d.net_g,
                tare_g=d.tare_g,
                quantity=d.quantity,
                price_idr=d.price_per_kg_idr,
                amount_idr=d.amount_idr,
                measured_at=d.measured_at.astimezone(tz),
                recorded_at=d.recorded_at.astimezone(tz),
                gateway_id=d.gateway_id,
                scale_id=d.scale_id,
                flow=d.flow,
                manual=d.manual,
                reason=d.reason,
                author=d.author,
                voided_at=local(void.voided_at) if void else None,
                void_reason=void.reason if void else None,
                replaced_by=replaced_by,
            )
            for d, code, void, replaced_by in deposits
        ],
        withdrawals=[
            WithdrawalOut(
                id=w.id,
                amount_idr=w.amount_idr,
                method=w.method,
                destination=w.destination,
                status=w.status,
                requested_at=w.requested_at.astimezone(tz),
                requested_by=w.requested_by,
                decided_at=local(w.decided_at),
                reason=w.reason,
                paid_at=local(w.paid_at),
                payout_ref=w.payout_ref,
            )
            for w in withdrawals
        ],
        statement=statement(session, member_no, now=now),
        exported_at=now.astimezone(tz),
    )
