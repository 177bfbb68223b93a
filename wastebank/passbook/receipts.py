"""The receipt (kuitansi) of a visit: one or more deposits of one member at one bank, with the
balance right after them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.passbook.statements import LineKind, city_zone, member_lines


class ReceiptLine(BaseModel):
    event_id: str
    category_code: str
    category_name_id: str
    category_name_en: str
    unit: str
    net_g: int
    quantity: int | None
    price_idr: int
    amount_idr: int
    manual: bool
    voided: bool  # reversed since; the receipt says so when reprinted


class Receipt(BaseModel):
    """The kuitansi of one visit: one or more deposits of one member at one bank."""

    number: str  # the first deposit's event id
    bank_code: str
    bank_name: str
    bank_place: str  # kelurahan, kecamatan, city
    member_no: str
    member_name: str
    at: AwareDatetime  # the first deposit's time, in the city's zone
    timezone: str
    lines: list[ReceiptLine]
    total_idr: int  # of the lines not voided
    balance_after_idr: int  # the passbook balance right after the last of these deposits
    attendant: str | None  # who entered a manual deposit
    printed_at: AwareDatetime


def receipt(session: Session, event_ids: Sequence[str], *, now: datetime | None = None) -> Receipt:
    """The receipt of deposits ``event_ids`` (one member's, at one bank: a visit). Raises
    :class:`wastebank.ledger.NotFound` for an unknown deposit and ValueError for deposits of
    different members or none."""
    if not event_ids:
        raise ValueError("a receipt needs at least one deposit")
    wanted = list(dict.fromkeys(event_ids))
    rows = {
        d.event_id: (d, c, v)
        for d, c, v in session.execute(
            select(ledger.Deposit, ledger.Category, ledger.DepositVoid)
            .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
            .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
            .where(ledger.Deposit.event_id.in_(wanted))
        ).all()
    }
    if missing := [e for e in wanted if e not in rows]:
        raise ledger.NotFound(f"unknown deposit(s): {', '.join(missing)}")
    deposits = [rows[e] for e in wanted]
    first = deposits[0][0]
    if any(d.member_id != first.member_id for d, _, _ in deposits):
        raise ValueError("a receipt covers the deposits of one member")
    member = first.member
    tz = city_zone(member)
    lines = [
        ReceiptLine(
            event_id=d.event_id,
            category_code=c.code,
            category_name_id=c.name_id,
            category_name_en=c.name_en,
            unit=c.unit,
            net_g=d.net_g,
            quantity=d.quantity,
            price_idr=d.price_per_kg_idr,
            amount_idr=d.amount_idr,
            manual=d.manual,
            voided=v is not None,
        )
        for d, c, v in deposits
    ]
    passbook = member_lines(session, member, tz)
    positions = [
        i
        for i, line in enumerate(passbook)
        if line.kind is LineKind.DEPOSIT and line.reference in rows
    ]
    bank = member.bank
    kelurahan = bank.kelurahan
    authors = sorted({d.author for d, _, _ in deposits if d.author})
    return Receipt(
        number=first.event_id,
        bank_code=bank.code,
        bank_name=bank.name,
        bank_place=f"{kelurahan.name}, {kelurahan.kecamatan.name}, {bank.city.name}",
        member_no=member.member_no,
        member_name=member.name,
        at=min(d.measured_at for d, _, _ in deposits).astimezone(tz),
        timezone=tz.key,
        lines=lines,
        total_idr=sum(line.amount_idr for line in lines if not line.voided),
        balance_after_idr=passbook[max(positions)].balance_idr,
        attendant=", ".join(authors) or None,
        printed_at=(now or ledger.utcnow()).astimezone(tz),
    )
