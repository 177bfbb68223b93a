"""Members (nasabah): register, read, update, balance, deposits, withdrawals, data export.

A member whom the caller may not read is answered 404, as if they did not exist (a citizen
cannot learn which member numbers are taken); a bank is public, so a bank the caller may not
act at is answered 403. Personal fields follow :func:`wastebank.access.can_see_personal`.

  GET   /api/banks/{bank}/members           attendant of the bank, DLH of its city, admin
  POST  /api/banks/{bank}/members           attendant of the bank, admin
  GET   /api/members/{no}                   the member, attendant, DLH (no personal data), admin
  PATCH /api/members/{no}                   attendant of the member's bank, admin
  GET   /api/members/{no}/balance           as GET /api/members/{no}
  GET   /api/members/{no}/transactions      as GET /api/members/{no}
  GET   /api/members/{no}/withdrawals       as GET /api/members/{no}
  POST  /api/members/{no}/withdrawals       the member for themself, attendant of their bank
  GET   /api/members/{no}/export            the member, admin: everything held about them
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.conditional import conditional
from api.deps import (
    READ,
    WRITE,
    CtxDep,
    PrincipalDep,
    SessionDep,
    StateDep,
    TokenDep,
    forbidden,
    invalid_as_422,
    not_found,
    read_as,
)
from api.schemas import (
    AuditOut,
    Balance,
    DepositOut,
    LoginOut,
    MemberExport,
    MemberIn,
    MemberListItem,
    MemberOut,
    MemberPatch,
    WithdrawalIn,
    WithdrawalOut,
)
from wastebank import access, ledger, passbook, sms

router = APIRouter(tags=["members"])

SMS_NEEDS_PHONE = (
    "SMS perlu nomor HP yang valid (08..., 62... atau +62...) / SMS needs a mobile number "
    "(08..., 62... or +62...)"
)


# ---- shared with the other routers and the pages ----------------------------------------------


def bank_or_404(session: Session, code: str) -> ledger.Bank:
    bank = session.scalar(select(ledger.Bank).where(ledger.Bank.code == code))
    if bank is None:
        raise not_found("bank", code)
    return bank


def visible_member(session: Session, p: access.Principal, member_no: str) -> ledger.Member:
    """The member, if ``p`` may read their account; 404 otherwise (existing or not)."""
    member = ledger.get_member(session, member_no)
    if member is None or not access.can_read_member(p, member):
        raise HTTPException(404, f"nasabah {member_no} tidak ditemukan / member not found")
    return member


def member_out(session: Session, p: access.Principal, member: ledger.Member) -> MemberOut:
    if not access.can_see_personal(p, member):
        return MemberOut(
            member_no=member.member_no,
            bank_code=member.bank.code,
            kind=member.kind,
            personal=False,
        )
    area = member.kelurahan
    has_login = session.scalar(select(access.User.id).where(access.User.member_id == member.id))
    return MemberOut(
        member_no=member.member_no,
        bank_code=member.bank.code,
        kind=member.kind,
        personal=True,
        name=member.name,
        phone=member.phone,
        kecamatan=area.kecamatan.name if area else None,
        kelurahan=area.name if area else None,
        rt=member.rt,
        rw=member.rw,
        cards=sorted(
            session.scalars(select(ledger.Card.uid).where(ledger.Card.member_id == member.id)).all()
        ),
        nik_on_file=member.nik_hash is not None,
        has_login=has_login is not None,
        sms_opt_in=member.sms_opt_in,
    )


def balance_for(session: Session, p: access.Principal, member_no: str) -> Balance:
    """The member's balance (:func:`wastebank.ledger.member_account_summary`, one statement),
    if ``p`` may read their account; 404 otherwise (as :func:`visible_member`)."""
    account = ledger.member_account_summary(session, member_no)
    if account is None or not access.can_read_member_at(
        p, account.member_id, account.bank_id, account.city_id
    ):
        raise HTTPException(404, f"nasabah {member_no} tidak ditemukan / member not found")
    personal = access.can_see_personal_at(p, account.member_id, account.bank_id, account.city_id)
    return Balance(
        member_no=member_no,
        name=account.name if personal else None,
        bank_code=account.bank_code,
        balance_idr=account.balance_idr,
        available_idr=account.available_idr,
        deposits=account.deposits,
        as_of=datetime.now(UTC),
    )


def balance_of(session: Session, p: access.Principal, member: ledger.Member) -> Balance:
    return balance_for(session, p, member.member_no)


def deposits_out(session: Session, deposits: Sequence[ledger.Deposit]) -> list[DepositOut]:
    ids = [d.id for d in deposits]
    voided = (
        set(
            session.scalars(
                select(ledger.DepositVoid.deposit_id).where(ledger.DepositVoid.deposit_id.in_(ids))
            )
        )
        if ids
        else set()
    )
    return [
        DepositOut(
            event_id=d.event_id,
            measured_at=d.measured_at,
            category_code=d.category.code,
            category_name=d.category.name_id,
            net_g=d.net_g,
            quantity=d.quantity,
            price_per_kg_idr=d.price_per_kg_idr,
            amount_idr=d.amount_idr,
            manual=d.manual,
            voided=d.id in voided,
        )
        for d in deposits
    ]


def withdrawal_out(w: ledger.Withdrawal, *, personal: bool) -> WithdrawalOut:
    return WithdrawalOut(
        id=w.id,
        member_no=w.member.member_no,
        bank_code=w.bank.code,
        amount_idr=w.amount_idr,
        method=w.method,
        destination=w.destination if personal else None,
        status=w.status,
        requested_at=w.requested_at,
        requested_by=w.requested_by,
        decided_at=w.decided_at,
        decided_by=w.decided_by,
        reason=w.reason,
        paid_at=w.paid_at,
        paid_by=w.paid_by,
        payout_ref=w.payout_ref,
        dual_control=w.dual_control,
    )


def audit_out(e: access.AuditEntry) -> AuditOut:
    return AuditOut(
        id=e.id,
        at=e.at,
        actor=e.actor,
        role=e.role,
        action=e.action,
        entity=e.entity,
        entity_id=e.entity_id,
        summary=e.summary,
        client_ip=e.client_ip,
        user_agent=e.user_agent,
    )


def _area(
    session: Session, bank: ledger.Bank, kecamatan: str | None, kelurahan: str | None
) -> ledger.Kelurahan | None:
    """The kelurahan/desa named, in the bank's city (and in ``kecamatan`` when given)."""
    if kelurahan is None:
        if kecamatan is not None:
            raise HTTPException(422, "kecamatan tanpa kelurahan / a kecamatan needs a kelurahan")
        return None
    stmt = (
        select(ledger.Kelurahan)
        .join(ledger.Kecamatan)
        .where(ledger.Kecamatan.city_id == bank.city_id, ledger.Kelurahan.name == kelurahan)
    )
    if kecamatan is not None:
        stmt = stmt.where(ledger.Kecamatan.name == kecamatan)
    found = session.scalars(stmt).all()
    if not found:
        raise HTTPException(
            422, f"kelurahan {kelurahan} tidak dikenal / unknown kelurahan in {bank.city.name}"
        )
    if len(found) > 1:
        raise HTTPException(422, f"{kelurahan}: sebutkan kecamatan / name its kecamatan too")
    return found[0]


# ---- routes -----------------------------------------------------------------------------------


@router.get("/api/banks/{bank_code}/members", response_model=list[MemberListItem], responses=READ)
def list_members(
    bank_code: str,
    p: PrincipalDep,
    session: SessionDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[MemberListItem] | Response:
    """A page of the bank's members; ``ETag`` of the page, 304 on ``If-None-Match``
    (api/conditional.py: gateways poll it)."""
    bank = bank_or_404(session, bank_code)
    if not access.can_read_bank(p, bank):
        raise forbidden(f"bank {bank.code}")
    members = session.scalars(
        select(ledger.Member)
        .where(ledger.Member.bank_id == bank.id)
        .order_by(ledger.Member.member_no)
        .limit(limit)
        .offset(offset)
    ).all()
    balances = ledger.member_balances(session, [m.member_no for m in members])
    cards: dict[int, list[str]] = {}
    if members:
        for uid, member_id in session.execute(
            select(ledger.Card.uid, ledger.Card.member_id)
            .where(ledger.Card.member_id.in_([m.id for m in members]))
            .order_by(ledger.Card.uid)
        ):
            cards.setdefault(member_id, []).append(uid)
    out = []
    for m in members:
        personal = access.can_see_personal(p, m)
        out.append(
            MemberListItem(
                member_no=m.member_no,
                kind=m.kind,
                name=m.name if personal else None,
                balance_idr=balances.get(m.member_no, 0),
                cards=cards.get(m.id, []) if personal else None,
                sms_opt_in=m.sms_opt_in if personal else None,
            )
        )
    unchanged = conditional(request, response, [i.model_dump() for i in out], private=True)
    return out if unchanged is None else unchanged


@router.post("/api/banks/{bank_code}/members", status_code=201, responses=WRITE)
def create_member(bank_code: str, body: MemberIn, ctx: CtxDep) -> MemberOut:
    """Register a nasabah at the bank (their login, with a PIN, is `wastebank user add`)."""
    with ctx.write() as s:
        bank = bank_or_404(s, bank_code)
        if not access.can_act_at(ctx.p, bank):
            raise forbidden(f"bank {bank.code}")
        if ledger.get_member(s, body.member_no) is not None:
            raise HTTPException(409, f"nasabah {body.member_no} sudah ada / member exists")
        for uid in body.cards:
            if s.get(ledger.Card, uid) is not None:
                raise HTTPException(409, f"kartu {uid} sudah dipakai / card is taken")
        kelurahan = _area(s, bank, body.kecamatan, body.kelurahan)
        nik = key = None
        if body.nik is not None:
            settings_key = ctx.state["settings"].nik_key
            if settings_key is None:
                raise HTTPException(
                    422,
                    "NIK tidak dapat dicatat: kunci NIK belum diatur / a NIK cannot be recorded: "
                    "no NIK key (WASTEBANK_NIK_KEY)",
                )
            nik, key = body.nik.get_secret_value(), settings_key.get_secret_value().encode()
            with invalid_as_422():
                twins = ledger.members_with_nik(s, nik, key)
            if twins:
                known = [m.member_no for m in twins if access.can_read_member(ctx.p, m)]
                where = f": {', '.join(known)}" if known else " (bank lain / another bank)"
                raise HTTPException(409, f"NIK sudah terdaftar / NIK already registered{where}")
        with invalid_as_422():
            member = ledger.create_member(
                s,
                bank=bank,
                member_no=body.member_no,
                name=body.name,
                kind=body.kind,
                phone=body.phone,
                kelurahan=kelurahan,
                rt=body.rt,
                rw=body.rw,
                nik=nik,
                nik_key=key,
                cards=body.cards,
            )
        ctx.audit(s, "member.create", "member", member.member_no, f"bank {bank.code}")
        return member_out(s, ctx.p, member)


@router.get("/api/members/{member_no}", responses=READ)
def get_member(member_no: str, p: PrincipalDep, session: SessionDep) -> MemberOut:
    return member_out(session, p, visible_member(session, p, member_no))


def _set_sms(member: ledger.Member, opt_in: bool | None) -> None:
    """SMS on or off (None: as it was); on only with a mobile number, also when the phone of a
    member who gets SMS is cleared or changed in the same request (422)."""
    if opt_in is not None:
        member.sms_opt_in = opt_in
    if member.sms_opt_in and sms.mobile(member.phone) is None:
        raise HTTPException(422, SMS_NEEDS_PHONE)


@router.patch("/api/members/{member_no}", responses=WRITE)
def update_member(member_no: str, body: MemberPatch, ctx: CtxDep) -> MemberOut:
    """Change a member's name, kind, phone, address or SMS opt-in (``sms_opt_in``: only with a
    mobile number); their number, bank and NIK stay."""
    with ctx.write() as s:
        member = visible_member(s, ctx.p, member_no)
        if not access.can_act_at(ctx.p, member.bank):
            raise forbidden(f"bank {member.bank.code}")
        changed = sorted(body.model_fields_set)
        for required in ("name", "kind", "sms_opt_in"):
            if required in body.model_fields_set and getattr(body, required) is None:
                raise HTTPException(422, f"{required} tidak boleh kosong / cannot be cleared")
        if body.name is not None:
            member.name = body.name
        if body.kind is not None:
            member.kind = body.kind
        if "phone" in body.model_fields_set:
            member.phone = body.phone
        if {"kecamatan", "kelurahan"} & body.model_fields_set:
            area = _area(s, member.bank, body.kecamatan, body.kelurahan)
            member.kelurahan_id = area.id if area else None
        if "rt" in body.model_fields_set:
            member.rt = None if body.rt is None else f"{body.rt:03d}"
        if "rw" in body.model_fields_set:
            member.rw = None if body.rw is None else f"{body.rw:03d}"
        _set_sms(member, body.sms_opt_in)
        s.flush()
        s.refresh(member)
        # the fields changed, not their values: the audit log holds no personal data
        ctx.audit(s, "member.update", "member", member.member_no, ", ".join(changed))
        return member_out(s, ctx.p, member)


@router.get("/api/members/{member_no}/balance", responses=READ)
async def balance(member_no: str, state: StateDep, token: TokenDep) -> Balance:
    return await read_as(state, token, lambda session, p: balance_for(session, p, member_no))


@router.get("/api/members/{member_no}/transactions", responses=READ)
def transactions(
    member_no: str,
    p: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DepositOut]:
    member = visible_member(session, p, member_no)
    return deposits_out(session, ledger.member_deposits(session, member.member_no, limit))


def withdrawals_of(session: Session, member: ledger.Member) -> list[ledger.Withdrawal]:
    """The member's withdrawals, newest first (their API route and their page)."""
    return list(
        session.scalars(
            select(ledger.Withdrawal)
            .where(ledger.Withdrawal.member_id == member.id)
            .order_by(ledger.Withdrawal.id.desc())
        )
    )


@router.get("/api/members/{member_no}/withdrawals", responses=READ)
def member_withdrawals(member_no: str, p: PrincipalDep, session: SessionDep) -> list[WithdrawalOut]:
    member = visible_member(session, p, member_no)
    personal = access.can_see_personal(p, member)
    return [withdrawal_out(w, personal=personal) for w in withdrawals_of(session, member)]


@router.post("/api/members/{member_no}/withdrawals", status_code=201, responses=WRITE)
def request_withdrawal(member_no: str, body: WithdrawalIn, ctx: CtxDep) -> WithdrawalOut:
    """Ask to withdraw: the member for themself, or an attendant of their bank for them. The
    amount is reserved at once; an attendant (or admin) approves, then pays. Above the
    second-approval amount (settings ``[money]``) it is ``dual_control``: approved by someone
    other than who asked, paid out by someone who neither asked nor approved."""
    with ctx.write() as s:
        member = visible_member(s, ctx.p, member_no)
        own = ctx.p.role == access.Role.CITIZEN and member.id == ctx.p.member_id
        if not own and not access.can_act_at(ctx.p, member.bank, admin=False):
            raise forbidden("permintaan penarikan / withdrawal request")
        w = ledger.request_withdrawal(
            s,
            member.member_no,
            body.amount_idr,
            body.method,
            requested_by=ctx.p.author,
            destination=body.destination,
            rules=ctx.state["settings"].money,
        )
        dual = " (dual control)" if w.dual_control else ""
        ctx.audit(
            s, "withdrawal.request", "withdrawal", w.id, f"{member_no} Rp{w.amount_idr}{dual}"
        )
        return withdrawal_out(w, personal=True)


@router.get("/api/members/{member_no}/export", responses=READ)
def export(member_no: str, p: PrincipalDep, session: SessionDep) -> MemberExport:
    """Everything held about the member, for the member themself or an admin."""
    member = visible_member(session, p, member_no)
    if p.role not in (access.Role.CITIZEN, access.Role.ADMIN):
        raise forbidden("hanya nasabah sendiri atau admin / the member or an admin only")
    login = session.scalar(select(access.User).where(access.User.member_id == member.id))
    entries = access.audit_entries(session, entity="member", entity_id=member.member_no)
    if login is not None:
        entries += access.audit_entries(session, entity="user", entity_id=login.username)
        entries += access.audit_entries(session, actor=login.username, limit=1000)
    unique = {e.id: e for e in entries}
    return MemberExport(
        exported_at=datetime.now(UTC),
        data=passbook.member_data(session, member.member_no),
        login=None
        if login is None
        else LoginOut(
            username=login.username,
            role=login.role,
            active=login.active,
            created_at=login.created_at,
            secret_changed_at=login.secret_changed_at,
        ),
        audit=[audit_out(e) for e in sorted(unique.values(), key=lambda e: e.id)],
    )
