"""Passbook statements and deposit receipts (wastebank/passbook/) over HTTP.

GET /api/members/{no}/statement?date_from=&date_to=&format=json|csv|pdf|text
    the member, their bank's attendants, admins (it names the member: not DLH)
GET /api/receipts?event_id=...&event_id=...&format=json|pdf|text&width=32|48
    a visit's deposits (one member's): the same people
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import (
    READ,
    PrincipalDep,
    SessionDep,
    StateDep,
    TokenDep,
    forbidden,
    invalid_as_422,
    not_found,
    read_as,
)
from api.members import visible_member
from wastebank import access, ledger, passbook

router = APIRouter(tags=["passbook"])

PERSONAL = "data pribadi nasabah / the member's personal data"


def _file(body: bytes | str, media_type: str, filename: str) -> Response:
    filename = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get(
    "/api/members/{member_no}/statement",
    response_model=passbook.Statement,
    responses={200: {"content": {"text/csv": {}, "application/pdf": {}, "text/plain": {}}}, **READ},
)
async def statement(
    member_no: str,
    state: StateDep,
    token: TokenDep,
    date_from: Annotated[date | None, Query(description="first local day (inclusive)")] = None,
    date_to: Annotated[date | None, Query(description="last local day (inclusive)")] = None,
    format: Literal["json", "csv", "pdf", "text"] = "json",  # noqa: A002
) -> passbook.Statement | Response:
    """The member's passbook (buku tabungan) for a period, with running balances."""

    def work(session: Session, p: access.Principal) -> passbook.Statement | Response:
        member = visible_member(session, p, member_no)
        if not access.can_see_personal(p, member):
            raise forbidden(PERSONAL)
        with invalid_as_422():
            st = passbook.statement(session, member.member_no, date_from, date_to)
        name = f"buku-tabungan-{member.member_no}"
        if format == "csv":
            return _file(passbook.statement_csv(st), "text/csv; charset=utf-8", f"{name}.csv")
        if format == "pdf":
            return _file(passbook.statement_pdf(st), "application/pdf", f"{name}.pdf")
        if format == "text":
            return _file(passbook.statement_text(st), "text/plain; charset=utf-8", f"{name}.txt")
        return st

    return await read_as(state, token, work)


@router.get(
    "/api/receipts",
    response_model=passbook.Receipt,
    responses={200: {"content": {"application/pdf": {}, "text/plain": {}}}, **READ},
)
def receipt(
    p: PrincipalDep,
    session: SessionDep,
    event_id: Annotated[list[str], Query(min_length=1, max_length=50)],
    format: Literal["json", "pdf", "text"] = "json",  # noqa: A002
    width: Annotated[
        int,
        Query(
            description="text: 32 (58 mm paper) or 48 (80 mm)",
            json_schema_extra={"enum": list(passbook.RECEIPT_WIDTHS)},
        ),
    ] = 32,
) -> passbook.Receipt | Response:
    """The kuitansi of one visit: deposits ``event_id`` (one member's, at one bank)."""
    if width not in passbook.RECEIPT_WIDTHS:
        raise HTTPException(422, "lebar struk 32 atau 48 / a receipt is 32 or 48 columns wide")
    for one in event_id:
        deposit = session.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == one))
        if deposit is None or not (
            access.can_read_member(p, deposit.member) or access.can_read_bank(p, deposit.bank)
        ):
            raise not_found("setoran / deposit", one)
        if not access.can_see_personal(p, deposit.member):
            raise forbidden(PERSONAL)
    try:
        rc = passbook.receipt(session, event_id)
    except ValueError as exc:
        raise HTTPException(422, f"tidak sah / invalid: {exc}") from None
    name = f"kuitansi-{rc.number}"
    if format == "pdf":
        return _file(passbook.receipt_pdf(rc), "application/pdf", f"{name}.pdf")
    if format == "text":
        return _file(passbook.receipt_text(rc, width), "text/plain; charset=utf-8", f"{name}.txt")
    return rc
