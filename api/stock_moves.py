"""Stock leaving a bank other than by a sale (api/bank.py has sales and the stock): a unit's
deliveries to its induk and residue to the TPS/TPA; the pengepul a bank sells to; every
movement of a bank.

  GET  /api/banks/{bank}/collectors     attendant, DLH of its city, admin: the pengepul of the
                                        bank's city (and those of no city)
  GET  /api/banks/{bank}/movements      attendant, DLH of its city, admin: sales, transfers
                                        (out of the bank, or into it at an induk), residue,
                                        burned; newest first (?kind=, ?limit=)
  POST /api/banks/{bank}/transfers      attendant of the unit (or of its induk): stock to the
                                        unit's induk (409 for a bank without one)
  POST /api/banks/{bank}/residue        attendant of the bank (or its induk): residue or burned

Writes are audited (``stock.transfer``, ``stock.residue``) and, like sales, recorded only by a
bank's own staff (admins read). Neither moves money, so no second-person rule applies (the
money rules name one for withdrawals only). A body with an ``idempotency_key`` already used by
the same attendant answers 200 with what it first recorded (a gateway's queue sending again).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from sqlalchemy import or_, select

from api.bank import on_a_day
from api.day_schemas import CollectorOut, MovementOut, ResidueIn, TransferIn
from api.deps import READ, WRITE, CtxDep, PrincipalDep, SessionDep, forbidden
from api.members import bank_or_404
from wastebank import access, ledger
from wastebank.formats import kg

router = APIRouter(tags=["stock"])

Kind = ledger.MovementKind


def movement_out(m: ledger.StockMovement) -> MovementOut:
    return MovementOut(
        id=m.id,
        kind=m.kind,
        bank_code=m.bank.code,
        to_bank_code=m.to_bank.code if m.to_bank else None,
        category_code=m.category.code,
        category_name=m.category.name_id,
        grams=m.grams,
        received_g=m.received_g,
        collector_code=m.collector.code if m.collector else None,
        collector_name=m.collector.name if m.collector else None,
        revenue_idr=m.revenue_idr,
        payment_method=m.payment_method,
        occurred_at=m.occurred_at,
        author=m.author,
        note=m.note,
    )


def _readable(session: ledger.Session, p: access.Principal, code: str) -> ledger.Bank:
    bank = bank_or_404(session, code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    return bank


@router.get("/api/banks/{bank_code}/collectors", responses=READ)
def collectors(bank_code: str, p: PrincipalDep, session: SessionDep) -> list[CollectorOut]:
    bank = _readable(session, p, bank_code)
    rows = session.scalars(
        select(ledger.Collector)
        .where(or_(ledger.Collector.city_id.is_(None), ledger.Collector.city_id == bank.city_id))
        .order_by(ledger.Collector.name)
    )
    return [CollectorOut(code=c.code, name=c.name, phone=c.phone) for c in rows]


@router.get("/api/banks/{bank_code}/movements", responses=READ)
def movements(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    kind: ledger.MovementKind | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[MovementOut]:
    bank = _readable(session, p, bank_code)
    m = ledger.StockMovement
    stmt = (
        select(m)
        .where(or_(m.bank_id == bank.id, m.to_bank_id == bank.id))
        .order_by(m.id.desc())
        .limit(limit)
    )
    if kind is not None:
        stmt = stmt.where(m.kind == kind)
    return [movement_out(row) for row in session.scalars(stmt)]


def _staff_bank(session: ledger.Session, p: access.Principal, code: str) -> ledger.Bank:
    bank = bank_or_404(session, code)
    if not access.can_act_at(p, bank, admin=False):
        raise forbidden(f"bank {bank.code}")
    return bank


def _category(session: ledger.Session, code: str) -> ledger.Category:
    found = session.scalar(select(ledger.Category).where(ledger.Category.code == code))
    if found is None:
        raise HTTPException(404, f"jenis sampah / category {code} tidak ditemukan / not found")
    return found


WRITTEN = {200: {"model": MovementOut, "description": "a repeated idempotency_key"}, **WRITE}


@router.post("/api/banks/{bank_code}/transfers", status_code=201, responses=WRITTEN)
def transfer(bank_code: str, body: TransferIn, ctx: CtxDep, response: Response) -> MovementOut:
    """Deliver a unit's stock to its induk (refused beyond the stock held, 409)."""
    with ctx.write() as s:
        bank = _staff_bank(s, ctx.p, bank_code)
        if bank.parent is None:
            raise HTTPException(
                409, f"{bank.name} tidak punya bank induk / {bank.name} has no induk to deliver to"
            )
        category = _category(s, body.category)
        repeat = ledger.movement_by_key(s, ctx.p.author, body.idempotency_key) is not None
        moved = ledger.transfer_stock(
            s,
            bank.code,
            category.code,
            body.grams,
            author=ctx.p.author,
            received_g=body.received_g,
            at=on_a_day(body.at, bank),
            note=body.note,
            idempotency_key=body.idempotency_key,
        )
        if repeat:
            response.status_code = 200
        received = body.grams if body.received_g is None else body.received_g
        ctx.audit(
            s,
            "stock.transfer.repeat" if repeat else "stock.transfer",
            "stock_movement",
            moved.id,
            f"{category.code} {kg(body.grams)} to {bank.parent.code} (received {kg(received)})",
        )
        return movement_out(moved)


@router.post("/api/banks/{bank_code}/residue", status_code=201, responses=WRITTEN)
def residue(bank_code: str, body: ResidueIn, ctx: CtxDep, response: Response) -> MovementOut:
    """Stock leaving as residue to the TPS/TPA, or burned (refused beyond the stock, 409)."""
    with ctx.write() as s:
        bank = _staff_bank(s, ctx.p, bank_code)
        category = _category(s, body.category)
        repeat = ledger.movement_by_key(s, ctx.p.author, body.idempotency_key) is not None
        moved = ledger.dispose_stock(
            s,
            bank.code,
            category.code,
            body.grams,
            Kind(body.kind),
            author=ctx.p.author,
            at=on_a_day(body.at, bank),
            note=body.note,
            idempotency_key=body.idempotency_key,
        )
        if repeat:
            response.status_code = 200
        ctx.audit(
            s,
            "stock.residue.repeat" if repeat else "stock.residue",
            "stock_movement",
            moved.id,
            f"{body.kind} {category.code} {kg(body.grams)}: {body.note}",
        )
        return movement_out(moved)
