"""A bank's operations: prices, manual deposits and their voids and corrections, withdrawal
decisions, stock and sales; the bank directory and the audit log.

  GET  /api/banks                               public: the directory of banks
  GET  /api/banks/{bank}/prices                 public: the price list in force (BSU publish it)
  PUT  /api/banks/{bank}/prices/{category}      attendant of the bank (or its induk), admin
  GET  /api/banks/{bank}/limits                 attendant, DLH of its city, admin: money rules
  POST /api/banks/{bank}/deposits               attendant: a manual deposit (scale down, pieces)
  POST /api/deposits/{event_id}/void            attendant of the deposit's bank
  POST /api/deposits/{event_id}/correct         attendant of the deposit's bank
  GET  /api/banks/{bank}/withdrawals            attendant, DLH of its city, admin
  POST /api/withdrawals/{id}/approve|reject|pay attendant of the member's bank, admin (above
                                                the second-approval amount: three people)
  POST /api/withdrawals/{id}/cancel             the member (own, not yet paid), attendant, admin
  GET  /api/banks/{bank}/stock                  attendant, DLH of its city, admin
  GET  /api/banks/{bank}/sales                  attendant, DLH of its city, admin
  POST /api/banks/{bank}/sales                  attendant: a sale to a pengepul
  GET  /api/audit                               admin
  GET  /api/banks/{bank}/gateway-logins?username=...  attendant of the bank, admin: which of
                                                those accounts may still log in at its gateway
                                                (the gateway drops the others' cached logins
                                                and sessions)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.conditional import conditional
from api.deps import (
    READ,
    WRITE,
    Ctx,
    CtxDep,
    PrincipalDep,
    SessionDep,
    StateDep,
    forbidden,
    not_found,
    refusals,
)
from api.members import audit_out, bank_or_404, withdrawal_out
from api.schemas import (
    AppliedOut,
    AuditOut,
    BankOut,
    CancelIn,
    CorrectIn,
    GatewayLoginsOut,
    ManualDepositIn,
    MoneyLimitsOut,
    PayIn,
    PriceIn,
    PriceLimitOut,
    PriceList,
    PriceOut,
    RejectIn,
    SaleIn,
    SaleOut,
    StockLineOut,
    StockOut,
    VoidIn,
    VoidOut,
    WithdrawalOut,
    in_utc,
)
from wastebank import access, ledger, sms
from wastebank.ledger.days import FIRST_DAY, LAST_DAY

router = APIRouter(tags=["banks"])

# A withdrawal's id: the ledger's ids are 32-bit (PostgreSQL integer); beyond 64 bits SQLite
# cannot even compare one.
WithdrawalId = Annotated[int, Path(ge=1, le=2**31 - 1)]

# A manual deposit may be entered late (the scale was down), never ahead of the clock.
CLOCK_SLACK = timedelta(minutes=5)


def _category(session: Session, code: str) -> ledger.Category:
    category = session.scalar(select(ledger.Category).where(ledger.Category.code == code))
    if category is None:
        raise not_found("jenis sampah / category", code)
    return category


def not_ahead(at: datetime | None) -> datetime:
    now = datetime.now(UTC)
    if at is None:
        return now
    if at > now + CLOCK_SLACK:
        raise HTTPException(422, "waktu di masa depan / a time in the future")
    return at


OUT_OF_RANGE = (
    f"waktu di luar jangkauan ({FIRST_DAY} s.d. {LAST_DAY}) / time out of range "
    f"({FIRST_DAY} to {LAST_DAY})"
)


def on_a_day(at: datetime | None, bank: ledger.Bank) -> datetime | None:
    """A time a client gave to a stock movement or a manual deposit (None: the ledger's now):
    not ahead of the clock, and on a local day of the bank that a day close can cover (the
    closes' own range, ``FIRST_DAY``..``LAST_DAY``). A sale of 0001-01-01 sat on a day no close
    covers and sorted first among the movements (422)."""
    if at is None:
        return None
    at = not_ahead(at)
    if not FIRST_DAY <= ledger.local_day(at, ledger.zone_of(bank)) <= LAST_DAY:
        raise HTTPException(422, f"{OUT_OF_RANGE}: {at.isoformat()}")
    return at


def _applied(a: ledger.AppliedDeposit) -> AppliedOut:
    return AppliedOut(
        outcome=a.outcome,
        event_id=a.event_id,
        member_no=a.member_no,
        bank_code=a.bank_code,
        category_code=a.category_code,
        net_g=a.net_g,
        amount_idr=a.amount_idr,
        price_per_kg_idr=a.price_per_kg_idr,
    )


# ---- the directory and prices ----------------------------------------------------------------


@router.get("/api/banks")
def banks(session: SessionDep) -> list[BankOut]:
    out = []
    for b in session.scalars(select(ledger.Bank).order_by(ledger.Bank.code)):
        out.append(
            BankOut(
                code=b.code,
                name=b.name,
                kind=b.kind,
                parent_code=b.parent.code if b.parent else None,
                use_parent_price=b.use_parent_price,
                city=b.city.name,
                kecamatan=b.kecamatan,
                kelurahan=b.kelurahan.name,
                min_withdrawal_idr=b.min_withdrawal_idr,
            )
        )
    return out


def prices(bank_code: str, session: Session, at: datetime | None = None) -> PriceList:
    """The bank's buying prices in force at ``at`` (its induk's list for a unit that uses it):
    its route's answer, and the admin's price page's list."""
    if at is not None and at.tzinfo is None:
        raise HTTPException(422, "waktu perlu zona waktu / give the time with its offset")
    try:
        when = in_utc(at) if at is not None else datetime.now(UTC)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    bank = bank_or_404(session, bank_code)
    owner = session.get(ledger.Bank, bank.price_bank_id)
    assert owner is not None
    latest = [
        PriceOut(
            category_code=category.code,
            category_name=category.name_id,
            unit=category.unit,
            price_idr=price.price_per_kg_idr,
            effective_from=price.effective_from,
        )
        for category, price in ledger.list_in_force(session, bank, when)
    ]
    return PriceList(bank_code=bank.code, price_bank_code=owner.code, at=when, prices=latest)


@router.get("/api/banks/{bank_code}/prices", response_model=PriceList, responses=refusals(404, 422))
def price_list(
    bank_code: str,
    session: SessionDep,
    request: Request,
    response: Response,
    at: Annotated[datetime | None, Query(description="default: now; with a time zone")] = None,
) -> PriceList | Response:
    """The bank's buying prices in force at ``at`` (its induk's list for a unit that uses it);
    ``ETag`` of the list, 304 on ``If-None-Match`` (api/conditional.py: gateways poll it)."""
    listed = prices(bank_code, session, at)
    content = [listed.price_bank_code, [p.model_dump() for p in listed.prices]]
    unchanged = conditional(request, response, content)
    return listed if unchanged is None else unchanged


@router.put("/api/banks/{bank_code}/prices/{category_code}", responses=WRITE)
def set_price(bank_code: str, category_code: str, body: PriceIn, ctx: CtxDep) -> PriceOut:
    """Set a price from ``effective_from`` (default now); deposits already priced keep theirs."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if not access.can_act_at(ctx.p, bank):
            raise forbidden(f"bank {bank.code}")
        if bank.use_parent_price:
            raise HTTPException(
                409, f"{bank.code} memakai harga induknya / buys at its induk's prices"
            )
        category = _category(s, category_code)
        since = body.effective_from or datetime.now(UTC)
        row = ledger.set_price(
            s,
            bank.code,
            category.code,
            body.price_idr,
            since,
            author=ctx.p.author,
            rules=ctx.state["settings"].money,
        )
        ctx.audit(
            s,
            "price.set",
            "price",
            f"{bank.code}/{category.code}",
            f"Rp{body.price_idr} per {category.unit} from {since.isoformat()}",
        )
        return PriceOut(
            category_code=category.code,
            category_name=category.name_id,
            unit=category.unit,
            price_idr=row.price_per_kg_idr,
            effective_from=row.effective_from,
        )


@router.get("/api/banks/{bank_code}/limits", responses=READ)
def limits(bank_code: str, p: PrincipalDep, session: SessionDep, state: StateDep) -> MoneyLimitsOut:
    """The money rules in force at the bank (settings ``[money]``, its city's values else the
    defaults): the price range of each category, the largest deposit from a scale and by hand,
    and the withdrawal amount above which three different people must ask, approve and pay."""
    bank = _readable_bank(session, p, bank_code)
    rules = state["settings"].money.city(bank.city.code)
    prices = []
    for category in session.scalars(select(ledger.Category).order_by(ledger.Category.code)):
        (low, low_setting), (high, high_setting) = rules.price_range(category.code)
        prices.append(
            PriceLimitOut(
                category_code=category.code,
                unit=category.unit,
                min_idr=low,
                max_idr=high,
                min_setting=low_setting,
                max_setting=high_setting,
            )
        )
    return MoneyLimitsOut(
        bank_code=bank.code,
        city_code=bank.city.code,
        prices=prices,
        scale_max_g=rules.pick("scale_max_g")[0],
        scales=rules.own_scales(),
        manual_max_g=rules.pick("manual_max_g")[0],
        manual_max_idr=rules.pick("manual_max_idr")[0],
        second_approval_above_idr=rules.second_approval_above()[0],
    )


# ---- deposits ---------------------------------------------------------------------------------


@router.post(
    "/api/banks/{bank_code}/deposits",
    status_code=201,
    responses={
        200: {"model": AppliedOut, "description": "a repeated idempotency_key"},
        **WRITE,
    },
)
def manual_deposit(
    bank_code: str, body: ManualDepositIn, ctx: CtxDep, response: Response
) -> AppliedOut:
    """A deposit entered by an attendant of the bank (201), under a new id the server issues
    (``M-XXXX-XXXX``; a client cannot choose it: a body with ``event_id`` is refused, 422).
    A retry carries the same ``idempotency_key``: 200 and the deposit as first recorded; the
    same key (same attendant) with another deposit is refused, 409."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if not access.can_act_at(ctx.p, bank, admin=False):
            raise forbidden(f"bank {bank.code}")
        applied = ledger.record_manual_deposit(
            s,
            bank_code=bank.code,
            member_no=body.member_no,
            category_code=body.category,
            net_g=body.net_g,
            quantity=body.quantity,
            measured_at=on_a_day(body.measured_at, bank),
            author=ctx.p.author,
            reason=body.reason,
            idempotency_key=body.idempotency_key,
            rules=ctx.state["settings"].money,
        )
        if applied.outcome == ledger.Outcome.DUPLICATE:
            response.status_code = 200
        else:
            ctx.audit(
                s,
                "deposit.manual",
                "deposit",
                applied.event_id,
                f"{applied.member_no} {applied.category_code} {applied.net_g} g "
                f"Rp{applied.amount_idr}: {body.reason}",
            )
            sms.queue_deposits(s, [applied.event_id])  # its SMS receipt, if the member opted in
        return _applied(applied)


def _deposit_to_change(s: Session, p: access.Principal, event_id: str) -> ledger.Deposit:
    deposit = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == event_id))
    if deposit is None or not (
        access.can_read_bank(p, deposit.bank) or access.can_read_member(p, deposit.member)
    ):
        raise not_found("setoran / deposit", event_id)
    if not access.can_act_at(p, deposit.bank, admin=False):
        raise forbidden(f"bank {deposit.bank.code}")
    return deposit


@router.post("/api/deposits/{event_id}/void", responses=WRITE)
def void_deposit(event_id: str, body: VoidIn, ctx: CtxDep) -> VoidOut:
    """Reverse a deposit (it stays, with reversal entries and the reason)."""
    with ctx.write() as s:
        _deposit_to_change(s, ctx.p, event_id)
        void = ledger.void_deposit(s, event_id, author=ctx.p.author, reason=body.reason)
        ctx.audit(s, "deposit.void", "deposit", event_id, body.reason)
        return VoidOut(
            event_id=event_id, voided_at=void.voided_at, reason=void.reason, author=void.author
        )


@router.post("/api/deposits/{event_id}/correct", responses=WRITE)
def correct_deposit(event_id: str, body: CorrectIn, ctx: CtxDep) -> VoidOut:
    """Void a deposit and record what it should have been, in one step."""
    with ctx.write() as s:
        _deposit_to_change(s, ctx.p, event_id)
        void, applied = ledger.correct_deposit(
            s,
            event_id,
            author=ctx.p.author,
            reason=body.reason,
            net_g=body.net_g,
            category_code=body.category,
            member_no=body.member_no,
            quantity=body.quantity,
            rules=ctx.state["settings"].money,
        )
        ctx.audit(
            s, "deposit.correct", "deposit", event_id, f"-> {applied.event_id}: {body.reason}"
        )
        return VoidOut(
            event_id=event_id,
            voided_at=void.voided_at,
            reason=void.reason,
            author=void.author,
            replacement=_applied(applied),
        )


# ---- the gateway's login cache -----------------------------------------------------------------

MAX_LOGINS_ASKED = 100


@router.get("/api/banks/{bank_code}/gateway-logins", responses=READ)
def gateway_logins(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    username: Annotated[
        list[str], Query(min_length=1, max_length=MAX_LOGINS_ASKED, description="repeat it")
    ],
) -> GatewayLoginsOut:
    """Which of these accounts may log in at the bank's gateway now: an active admin, or an
    active attendant of the bank (or of its induk), as ``GET /api/me`` would allow there. The
    gateway asks about the logins it has cached or signed in, and ends the others'; an account
    disabled, removed or moved to another bank is simply not in the answer."""
    bank = bank_or_404(session, bank_code)
    if not access.can_act_at(p, bank):
        raise forbidden(f"bank {bank.code}")
    names = sorted({u[:64] for u in username})
    users = session.scalars(
        select(access.User).where(access.User.username.in_(names), access.User.active)
    ).all()
    allowed = []
    for user in users:
        if user.role == access.Role.ADMIN:
            allowed.append(user.username)
        elif user.role == access.Role.ATTENDANT:
            if bank.id in access.principal_of(session, user).bank_ids:
                allowed.append(user.username)
    return GatewayLoginsOut(allowed=sorted(allowed))


# ---- withdrawals ------------------------------------------------------------------------------


@router.get("/api/banks/{bank_code}/withdrawals", responses=READ)
def bank_withdrawals(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    status: ledger.WithdrawalStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[WithdrawalOut]:
    bank = bank_or_404(session, bank_code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    stmt = (
        select(ledger.Withdrawal)
        .where(ledger.Withdrawal.bank_id == bank.id)
        .order_by(ledger.Withdrawal.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(ledger.Withdrawal.status == status)
    out = []
    accounts: dict[str, ledger.MemberAccount | None] = {}
    for w in session.scalars(stmt):
        personal = access.can_see_personal(p, w.member)
        row = withdrawal_out(w, personal=personal)
        if personal:
            # the attendant's page shows whose request it is and what they may still withdraw
            no = w.member.member_no
            if no not in accounts:
                accounts[no] = ledger.member_account_summary(session, no)
            account = accounts[no]
            row.member_name = w.member.name
            row.available_idr = None if account is None else account.available_idr
        out.append(row)
    return out


def _withdrawal(s: Session, p: access.Principal, withdrawal_id: int) -> ledger.Withdrawal:
    w = s.get(ledger.Withdrawal, withdrawal_id)
    if w is None or not access.can_read_member(p, w.member):
        raise not_found("penarikan / withdrawal", withdrawal_id)
    return w


def _decide(s: Session, p: access.Principal, withdrawal_id: int) -> ledger.Withdrawal:
    w = _withdrawal(s, p, withdrawal_id)
    if not access.can_act_at(p, w.bank):
        raise forbidden("keputusan penarikan / withdrawal decision")
    return w


@contextmanager
def _refusals_audited(ctx: Ctx, action: str, withdrawal_id: int) -> Iterator[None]:
    """A second-person refusal (someone approving what they asked for, or paying out what they
    asked for or approved) is audited, in a transaction of its own (the refused one rolls back),
    then answered 403: repeated attempts are each on record."""
    try:
        yield
    except ledger.SecondPersonRequired as exc:
        with ctx.write() as s:
            ctx.audit(s, f"{action}.refused", "withdrawal", withdrawal_id, str(exc))
        raise


def _dual(w: ledger.Withdrawal) -> str:
    return " (dual control)" if w.dual_control else ""


@router.post(
    "/api/withdrawals/{withdrawal_id}/approve", responses=refusals(401, 403, 404, 409, 422)
)
def approve_withdrawal(withdrawal_id: WithdrawalId, ctx: CtxDep) -> WithdrawalOut:
    """requested -> approved; a ``dual_control`` withdrawal not by the one who asked (403)."""
    with _refusals_audited(ctx, "withdrawal.approve", withdrawal_id), ctx.write() as s:
        _decide(s, ctx.p, withdrawal_id)
        w = ledger.approve_withdrawal(s, withdrawal_id, author=ctx.p.author)
        ctx.audit(s, "withdrawal.approve", "withdrawal", w.id, f"Rp{w.amount_idr}{_dual(w)}")
        return withdrawal_out(w, personal=True)


@router.post("/api/withdrawals/{withdrawal_id}/reject", responses=WRITE)
def reject_withdrawal(withdrawal_id: WithdrawalId, body: RejectIn, ctx: CtxDep) -> WithdrawalOut:
    with ctx.write() as s:
        _decide(s, ctx.p, withdrawal_id)
        w = ledger.reject_withdrawal(s, withdrawal_id, author=ctx.p.author, reason=body.reason)
        ctx.audit(s, "withdrawal.reject", "withdrawal", w.id, body.reason)
        return withdrawal_out(w, personal=True)


NO_REFERENCE = "nomor referensi transfer wajib diisi / the transfer's reference is required"


@router.post("/api/withdrawals/{withdrawal_id}/pay", responses=WRITE)
def pay_withdrawal(withdrawal_id: WithdrawalId, body: PayIn, ctx: CtxDep) -> WithdrawalOut:
    """approved -> paid; a ``dual_control`` withdrawal by someone who neither asked for it nor
    approved it (403); a transfer or an e-wallet with its ``payout_ref`` (422 without). The
    same pay again (the same attendant and the same non-empty ``payout_ref``: a retry whose
    answer was lost, the gateway's queue) answers 200 with the payment first recorded and pays
    nothing (audited ``withdrawal.pay.repeat``); any other pay of a paid withdrawal is 409."""
    with _refusals_audited(ctx, "withdrawal.pay", withdrawal_id), ctx.write() as s:
        w = _decide(s, ctx.p, withdrawal_id)
        author, ref = ctx.p.author, body.payout_ref
        if w.method != ledger.PayoutMethod.CASH and not ref:
            # docs/attendant.md: a transfer or an e-wallet is paid with its reference, as the
            # gateway asks for it; without one the payment cannot be traced or told apart
            raise HTTPException(422, NO_REFERENCE)
        repeat = ledger.repeats_payment(w, author, ref)
        w = ledger.pay_withdrawal(s, withdrawal_id, author=author, payout_ref=ref)
        action = "withdrawal.pay.repeat" if repeat else "withdrawal.pay"
        ctx.audit(s, action, "withdrawal", w.id, f"Rp{w.amount_idr} {w.method}{_dual(w)}")
        if not repeat:
            sms.queue_withdrawal(s, w)  # in the payment's transaction: paid once, one SMS
        return withdrawal_out(w, personal=True)


@router.post("/api/withdrawals/{withdrawal_id}/cancel", responses=WRITE)
def cancel_withdrawal(withdrawal_id: WithdrawalId, body: CancelIn, ctx: CtxDep) -> WithdrawalOut:
    """Cancel before it is paid: the member their own, or staff who decide at the bank."""
    with ctx.write() as s:
        w = _withdrawal(s, ctx.p, withdrawal_id)
        own = ctx.p.role == access.Role.CITIZEN and w.member_id == ctx.p.member_id
        if not own and not access.can_act_at(ctx.p, w.bank):
            raise forbidden("pembatalan / cancellation")
        reason = body.reason or "dibatalkan / cancelled"
        w = ledger.cancel_withdrawal(s, withdrawal_id, author=ctx.p.author, reason=reason)
        ctx.audit(s, "withdrawal.cancel", "withdrawal", w.id, reason)
        return withdrawal_out(w, personal=True)


# ---- stock and sales --------------------------------------------------------------------------


def _readable_bank(session: Session, p: access.Principal, code: str) -> ledger.Bank:
    bank = bank_or_404(session, code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    return bank


@router.get("/api/banks/{bank_code}/stock", responses=READ)
def stock(bank_code: str, p: PrincipalDep, session: SessionDep) -> StockOut:
    """What the bank holds per category, and why (``lines``: in - sold - transferred -
    residue - burned), all from the ledger's one stock rule (``ledger.stock_lines``)."""
    bank = _readable_bank(session, p, bank_code)
    lines = ledger.stock_lines(session, bank.code)
    held = {line.category_code: line.held_g for line in lines}
    return StockOut(
        bank_code=bank.code,
        stock_g=held,
        total_g=sum(held.values()),
        lines=[StockLineOut(**line._asdict()) for line in lines],
    )


def _sale_out(m: ledger.StockMovement) -> SaleOut:
    return SaleOut(
        id=m.id,
        bank_code=m.bank.code,
        category_code=m.category.code,
        grams=m.grams,
        collector_code=m.collector.code if m.collector else None,
        revenue_idr=m.revenue_idr,
        occurred_at=m.occurred_at,
        author=m.author,
        note=m.note,
        payment_method=m.payment_method,
        category_name=m.category.name_id,
        collector_name=m.collector.name if m.collector else None,
    )


def _collector(session: Session, code: str) -> None:
    """404 for a pengepul not on record, named in both languages (as a category is)."""
    if session.scalar(select(ledger.Collector.id).where(ledger.Collector.code == code)) is None:
        raise HTTPException(404, f"pengepul {code} tidak ditemukan / pengepul {code} not found")


@router.get("/api/banks/{bank_code}/sales", responses=READ)
def sales(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SaleOut]:
    bank = _readable_bank(session, p, bank_code)
    rows = session.scalars(
        select(ledger.StockMovement)
        .where(
            ledger.StockMovement.bank_id == bank.id,
            ledger.StockMovement.kind == ledger.MovementKind.SALE,
        )
        .order_by(ledger.StockMovement.id.desc())
        .limit(limit)
    )
    return [_sale_out(m) for m in rows]


@router.post(
    "/api/banks/{bank_code}/sales",
    status_code=201,
    responses={200: {"model": SaleOut, "description": "a repeated idempotency_key"}, **WRITE},
)
def sell(bank_code: str, body: SaleIn, ctx: CtxDep, response: Response) -> SaleOut:
    """Record a sale of stock to a pengepul (refused beyond the stock held, 409), paid in cash
    (the drawer a day close counts) or by ``payment_method``. A retry with the same
    ``idempotency_key`` answers 200 with the sale first recorded and records nothing."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if not access.can_act_at(ctx.p, bank, admin=False):
            raise forbidden(f"bank {bank.code}")
        _category(s, body.category)
        _collector(s, body.collector)
        repeat = ledger.movement_by_key(s, ctx.p.author, body.idempotency_key) is not None
        if repeat:
            response.status_code = 200
        movement = ledger.sell_stock(
            s,
            bank.code,
            body.category,
            body.grams,
            collector_code=body.collector,
            revenue_idr=body.revenue_idr,
            author=ctx.p.author,
            at=on_a_day(body.at, bank),
            note=body.note,
            payment_method=body.payment_method,
            idempotency_key=body.idempotency_key,
        )
        ctx.audit(
            s,
            "stock.sale.repeat" if repeat else "stock.sale",
            "stock_movement",
            movement.id,
            f"{body.category} {body.grams} g to {body.collector} Rp{body.revenue_idr} "
            f"{body.payment_method}",
        )
        return _sale_out(movement)


# ---- the audit log ----------------------------------------------------------------------------


@router.get("/api/audit", tags=["audit"], responses=refusals(401, 403, 422))
def audit_log(
    p: PrincipalDep,
    session: SessionDep,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    if p.role != access.Role.ADMIN:
        raise forbidden("log audit hanya untuk admin / the audit log is for admins")
    entries = access.audit_entries(
        session, entity=entity, entity_id=entity_id, actor=actor, limit=limit
    )
    return [audit_out(e) for e in entries]
