"""What the ledger made of deposits, by event id: the gateway's receipts show the ledger's amount
once it has applied a deposit (never a price the ledger will not use), and ask here.

  GET /api/banks/{bank}/deposits?event_id=...&event_id=...   attendant of the bank, DLH of its
                                                            city, admin (up to 100 ids)

The answer lists the deposits of that bank the ledger has (its amount, its price, when it was
measured and whether the gateway's clock was synchronized when it stamped that time, whether and
when it was voided) and, in ``missing``, the ids asked about that it has
not (not applied yet: the ingester is behind or the gateway's outbox still holds it; or a
deposit of another bank, which is not told apart, so no caller learns another bank's ids).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from api.deps import READ, PrincipalDep, SessionDep, forbidden
from api.members import bank_or_404
from wastebank import access, ledger

MAX_IDS: Final = 100

router = APIRouter(tags=["banks"])


class AppliedDepositOut(BaseModel):
    event_id: str
    member_no: str
    category_code: str
    net_g: int
    quantity: int | None
    price_per_kg_idr: int = Field(description="the price per the category's unit it was priced at")
    amount_idr: int = Field(description="what the member's account was credited")
    measured_at: datetime
    clock_synced: bool | None = Field(
        description="the gateway's word on its clock when it stamped measured_at: false, not "
        "synchronized since the gateway booted (measured_at may be hours or days off); true, "
        "synchronized; null, not said (manual deposits, gateways from before issue 16, a "
        "gateway without a time daemon)"
    )
    applied_at: datetime
    manual: bool
    voided: bool
    voided_at: datetime | None


class DepositLookupOut(BaseModel):
    bank_code: str
    deposits: list[AppliedDepositOut]
    missing: list[str] = Field(description="ids the ledger has no deposit of this bank for")


@router.get("/api/banks/{bank_code}/deposits", responses=READ)
def deposits_by_id(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    event_id: Annotated[
        list[str],
        Query(min_length=1, max_length=MAX_IDS, description="one or more event ids"),
    ],
) -> DepositLookupOut:
    """The bank's deposits among ``event_id`` as the ledger applied them."""
    bank = bank_or_404(session, bank_code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    asked = list(dict.fromkeys(event_id))
    rows = session.execute(
        select(ledger.Deposit, ledger.Member.member_no, ledger.Category.code, ledger.DepositVoid)
        .join(ledger.Member, ledger.Member.id == ledger.Deposit.member_id)
        .join(ledger.Category, ledger.Category.id == ledger.Deposit.category_id)
        .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
        .where(ledger.Deposit.event_id.in_(asked), ledger.Deposit.bank_id == bank.id)
    ).all()
    found = {
        d.event_id: AppliedDepositOut(
            event_id=d.event_id,
            member_no=member_no,
            category_code=category_code,
            net_g=d.net_g,
            quantity=d.quantity,
            price_per_kg_idr=d.price_per_kg_idr,
            amount_idr=d.amount_idr,
            measured_at=d.measured_at,
            clock_synced=d.clock_synced,
            applied_at=d.recorded_at,
            manual=d.manual,
            voided=void is not None,
            voided_at=None if void is None else void.voided_at,
        )
        for d, member_no, category_code, void in rows
    }
    return DepositLookupOut(
        bank_code=bank.code,
        deposits=[found[e] for e in asked if e in found],
        missing=[e for e in asked if e not in found],
    )
