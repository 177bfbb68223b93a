"""What the bank's desk does for a member beyond registering them: the next member number, a card
bound to them, and their PIN issued or reset (the attendant's page on the gateway calls these).

  GET   /api/banks/{bank}/members/next-no   attendant of the bank, admin: a free member number
  POST  /api/members/{no}/cards             attendant of the member's bank, admin: {uid}
  POST  /api/members/{no}/pin               attendant of the member's bank, admin: {reset}

A PIN is issued once: the answer holds it (``Cache-Control: no-store``) and nothing else ever
does; the ledger keeps its argon2id hash, the audit log who issued it and when
(:mod:`wastebank.access.pins`). The first PIN makes the member's citizen login (their username is
their member number); a reset (``{"reset": true}``, refused without it when they have a login)
replaces it and ends every token and page session of theirs. PINs issued count against the
login limits (``[auth]``: ``login_max_failures`` per member, ``login_max_failures_per_ip`` per
person, within ``login_window``: 429 with Retry-After), and the route hashes in a login slot
(api/capacity.py), as logins do. A member the caller may not read is 404 (as api/members.py).
"""

from __future__ import annotations

import re
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import READ, WRITE, CtxDep, PrincipalDep, SessionDep, forbidden, refusals
from api.members import bank_or_404, member_out, visible_member
from api.schemas import CardUid, In, MemberOut
from wastebank import access, ledger

router = APIRouter(tags=["members"])

NUMBERED = re.compile(r"^(.*?)([0-9]+)$")
MAX_TRIES = 1000


class NextNo(BaseModel):
    member_no: str


class CardIn(In):
    uid: CardUid


class PinIn(In):
    reset: bool = False


class PinOut(BaseModel):
    """A PIN issued: shown once, on the slip the attendant prints for the member."""

    member_no: str
    name: str
    username: str
    pin: str
    created: bool
    issued_at: datetime


def next_member_no(session: Session, bank: ledger.Bank) -> str:
    """The bank's highest numbered member's number plus one (its prefix and width kept: AMB-0003
    gives AMB-0004), skipping numbers taken at any bank; ``<BANK CODE>-0001`` for a bank with
    no numbered member yet."""
    best: tuple[int, str, int] | None = None  # number, prefix, width
    for no in session.scalars(
        select(ledger.Member.member_no).where(ledger.Member.bank_id == bank.id)
    ):
        m = NUMBERED.match(no)
        if m and (best is None or int(m[2]) > best[0]):
            best = (int(m[2]), m[1], len(m[2]))
    n, prefix, width = best or (0, f"{bank.code.upper()}-", 4)
    for step in range(1, MAX_TRIES + 1):
        candidate = f"{prefix}{n + step:0{width}d}"
        if ledger.get_member(session, candidate) is None:
            return candidate
    raise HTTPException(409, "tidak ada nomor bebas / no free member number near the last one")


@router.get("/api/banks/{bank_code}/members/next-no", responses=READ)
def next_no(bank_code: str, p: PrincipalDep, session: SessionDep) -> NextNo:
    bank = bank_or_404(session, bank_code)
    if not access.can_act_at(p, bank):
        raise forbidden(f"bank {bank.code}")
    return NextNo(member_no=next_member_no(session, bank))


@router.post("/api/members/{member_no}/cards", status_code=201, responses=WRITE)
def add_card(member_no: str, body: CardIn, ctx: CtxDep, response: Response) -> MemberOut:
    """Bind a card (its UID as the reader gives it, upper-case hex) to the member. A card held by
    another member is refused (409); one the member holds already is answered 200."""
    with ctx.write() as s:
        member = visible_member(s, ctx.p, member_no)
        if not access.can_act_at(ctx.p, member.bank):
            raise forbidden(f"bank {member.bank.code}")
        card = s.get(ledger.Card, body.uid)
        if card is not None and card.member_id != member.id:
            raise HTTPException(
                409, f"kartu {body.uid} sudah dipakai nasabah lain / the card is another member's"
            )
        if card is None:
            s.add(ledger.Card(uid=body.uid, member_id=member.id))
            s.flush()
            ctx.audit(s, "member.card_add", "member", member.member_no, f"kartu {body.uid}")
        else:
            response.status_code = 200
        return member_out(s, ctx.p, member)


@router.post("/api/members/{member_no}/pin", responses={**WRITE, **refusals(429)})
def issue_pin(
    member_no: str, body: PinIn, ctx: CtxDep, session: SessionDep, response: Response
) -> PinOut:
    """Issue the member's PIN (their login made if missing), or reset it (``reset``)."""
    member = visible_member(session, ctx.p, member_no)
    if not access.can_act_at(ctx.p, member.bank):
        raise forbidden(f"bank {member.bank.code}")
    settings = ctx.state["settings"].auth
    # refused before the slow hash when the limits are reached already (checked again below)
    wait = access.pin_wait(session, member.member_no, ctx.actor, settings, ledger.utcnow())
    session.rollback()  # no read transaction held across the hash
    if wait is not None:
        raise _too_many(access.TooManyPins(wait))
    pin = access.new_pin()
    pin_hash = ctx.state["hasher"].hash(pin)  # outside the write: SQLite writes one at a time
    with ctx.write() as s:
        fresh = visible_member(s, ctx.p, member_no)
        try:
            issued = access.issue_pin(
                s, fresh, pin_hash, ctx.actor, reset=body.reset, settings=settings
            )
        except access.TooManyPins as exc:
            raise _too_many(exc) from None
    response.headers["Cache-Control"] = "no-store"
    return PinOut(
        member_no=issued.member_no,
        name=issued.name,
        username=issued.username,
        pin=pin,
        created=issued.created,
        issued_at=issued.at,
    )


def _too_many(exc: access.TooManyPins) -> HTTPException:
    return HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})
