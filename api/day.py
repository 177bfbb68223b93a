"""A bank's day: its totals from the ledger by the city's local day, and the day's close with the
cash counted (wastebank/ledger/days.py has the rules, "cash expected" among them).

  GET  /api/banks/{bank}/days/{date}          attendant, DLH of its city, admin: the day's totals
                                              (deposits per category, voids apart; withdrawals
                                              paid; sales; transfers; residue), the stock now,
                                              the close if any and, before it, what a close
                                              would record now (?opening_cash_idr= at a first
                                              close)
  POST /api/banks/{bank}/days/{date}/close    attendant of the bank (or its induk), admin:
                                              {counted_cash_idr, note, opening_cash_idr?}: 201,
                                              expected and difference recorded, audited; 409 for
                                              a day closed already or before the latest close,
                                              422 for a day still to come
  POST /api/banks/{bank}/days/{date}/reopen   admin: {reason}: the bank's latest close is
                                              reopened (kept, marked), audited; the day may be
                                              closed again

``date`` is the local date (YYYY-MM-DD) in the bank's city zone (WIB, WITA or WIT).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from api.day_schemas import (
    CashOut,
    CategoryTotalOut,
    CloseIn,
    DayCloseOut,
    DayOut,
    MethodTotalOut,
    ReopenIn,
    SumOut,
)
from api.deps import READ, WRITE, CtxDep, PrincipalDep, SessionDep, forbidden
from api.members import bank_or_404
from api.schemas import MAX_IDR, StockLineOut
from wastebank import access, ledger
from wastebank.errors import WastebankError
from wastebank.formats import rupiah, zone_label

router = APIRouter(tags=["days"])


def _cash_out(c: ledger.Cash) -> CashOut:
    return CashOut(
        cash_from=c.cash_from,
        cash_until=c.cash_until,
        opening_idr=c.opening_idr,
        opening_source=c.opening_source,
        in_idr=c.in_idr,
        out_idr=c.out_idr,
        expected_idr=c.expected_idr,
    )


def close_out(row: ledger.DayClose) -> DayCloseOut:
    return DayCloseOut(
        id=row.id,
        bank_code=row.bank.code,
        local_date=row.local_date,
        revision=row.revision,
        cash=CashOut(
            cash_from=row.cash_from,
            cash_until=row.cash_until,
            opening_idr=row.opening_cash_idr,
            opening_source=row.opening_source,
            in_idr=row.cash_in_idr,
            out_idr=row.cash_out_idr,
            expected_idr=row.expected_cash_idr,
        ),
        counted_cash_idr=row.counted_cash_idr,
        difference_idr=row.difference_idr,
        note=row.note,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
        reopened_at=row.reopened_at,
        reopened_by=row.reopened_by,
        reopen_reason=row.reopen_reason,
    )


def _categories(rows: list[ledger.CategoryTotal]) -> list[CategoryTotalOut]:
    return [CategoryTotalOut(**vars(r)) for r in rows]


def _sum(rows: list[ledger.CategoryTotal]) -> SumOut:
    return SumOut(
        count=sum(r.count for r in rows),
        grams=sum(r.grams for r in rows),
        amount_idr=sum(r.amount_idr for r in rows),
    )


def _methods(rows: list[ledger.MethodTotal]) -> list[MethodTotalOut]:
    return [MethodTotalOut(**vars(r)) for r in rows]


def _cash_now(
    session: Session, bank: ledger.Bank, day: date, opening: int | None
) -> tuple[CashOut | None, str | None]:
    """What a close of ``day`` would record now, or why it cannot be closed."""
    try:
        return _cash_out(ledger.cash_for_close(session, bank, day, opening_cash_idr=opening)), None
    except WastebankError as exc:
        return None, f"{exc.title}: {exc}"


def day_out(session: Session, bank: ledger.Bank, day: date, opening: int | None = None) -> DayOut:
    """The day as GET answers it (the gateway's day page and day sheet read this)."""
    totals = ledger.day_totals(session, bank.code, day)
    closes = ledger.closes_of(session, bank, day)
    live = next((c for c in reversed(closes) if c.reopened_at is None), None)
    if live is not None:
        cash: CashOut | None = close_out(live).cash
        why: str | None = ledger.DayAlreadyClosed.title
    else:
        cash, why = _cash_now(session, bank, day, opening)
    paid = _methods(totals.withdrawals_paid)
    zone = ledger.zone_of(bank)
    return DayOut(
        bank_code=bank.code,
        bank_name=bank.name,
        local_date=day,
        zone=totals.zone,
        zone_label=zone_label(zone, totals.start),
        start=totals.start,
        end=totals.end,
        deposits=_categories(totals.deposits),
        deposits_total=_sum(totals.deposits),
        voided=_sum([totals.voided]),
        withdrawals_paid=paid,
        withdrawals_paid_total=SumOut(
            count=sum(m.count for m in paid), grams=0, amount_idr=sum(m.amount_idr for m in paid)
        ),
        sales=_categories(totals.sales),
        sales_by_method=_methods(totals.sales_by_method),
        sales_total=_sum(totals.sales),
        transfers_out=_categories(totals.transfers_out),
        transfers_in=_categories(totals.transfers_in),
        residue=_categories(totals.residue),
        burned=_categories(totals.burned),
        stock=[StockLineOut(**line._asdict()) for line in ledger.stock_lines(session, bank.code)],
        close=close_out(live) if live is not None else None,
        closes=[close_out(c) for c in closes],
        cash=cash,
        closable=live is None and cash is not None,
        closable_why=why if live is not None or cash is None else None,
    )


@router.get("/api/banks/{bank_code}/days/{day}", responses=READ)
def day(
    bank_code: str,
    day: date,
    p: PrincipalDep,
    session: SessionDep,
    opening_cash_idr: Annotated[
        int | None, Query(ge=0, le=MAX_IDR, description="a first close's float, to preview")
    ] = None,
) -> DayOut:
    bank = bank_or_404(session, bank_code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    return day_out(session, bank, day, opening_cash_idr)


@router.post("/api/banks/{bank_code}/days/{day}/close", status_code=201, responses=WRITE)
def close(bank_code: str, day: date, body: CloseIn, ctx: CtxDep) -> DayCloseOut:
    """Close the day with the cash counted; the expected cash and the difference are
    recorded with it (wastebank/ledger/days.py: how cash expected is reckoned)."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if not access.can_act_at(ctx.p, bank):
            raise forbidden(f"bank {bank.code}")
        row = ledger.close_day(
            s,
            bank.code,
            day,
            counted_cash_idr=body.counted_cash_idr,
            author=ctx.p.author,
            note=body.note,
            opening_cash_idr=body.opening_cash_idr,
        )
        ctx.audit(
            s,
            "day.close",
            "day_close",
            row.id,
            f"{bank.code} {day} #{row.revision}: counted {rupiah(row.counted_cash_idr)}, "
            f"expected {rupiah(row.expected_cash_idr)}, difference {rupiah(row.difference_idr)}"
            + (f": {body.note}" if body.note else ""),
        )
        return close_out(row)


@router.post("/api/banks/{bank_code}/days/{day}/reopen", responses=WRITE)
def reopen(bank_code: str, day: date, body: ReopenIn, ctx: CtxDep) -> DayCloseOut:
    """An admin reopens the bank's latest close (it stays, marked), so the day can be closed
    again with a corrected count."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if ctx.p.role != access.Role.ADMIN:
            raise forbidden("hanya admin yang membuka kembali hari / only an admin reopens a day")
        row = ledger.reopen_day(s, bank.code, day, author=ctx.p.author, reason=body.reason)
        ctx.audit(s, "day.reopen", "day_close", row.id, f"{bank.code} {day}: {body.reason}")
        return close_out(row)
