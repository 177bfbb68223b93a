"""The citizen's (nasabah) pages, on the page session cookie.

  GET  /nasabah/{no}                    the member's page: balance, dampak saya, deposits by
                                        category, withdrawals, passbook (the member, their
                                        bank's attendants, admins; anyone else: 404)
  POST /nasabah/{no}/penarikan          request a withdrawal (as POST /api/members/{no}/withdrawals)
  GET  /nasabah/{no}/buku-tabungan      the passbook as PDF or CSV (as .../statement)

The DLH dashboard: api/pages_dlh.py; the admin pages: api/pages_admin.py. On every page: not
signed in, 303 to /masuk; signed in but not allowed, a 403 page (404 for a member's pages, as
the JSON API does: a member number's existence is not disclosed). Every form that changes state
carries the CSRF token (api/web.py). The pages call the same services and route logic as the
JSON API (api/members.py, api/bank.py, api/dlh.py, api/tps.py); the queries they need that the
API has not are in their modules.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import members as members_api
from api.deps import PagePrincipalDep, SessionDep, State, StateDep, request_ctx
from api.pages_dlh import central_text, figure_text, span_text
from api.schemas import WithdrawalIn
from api.validation import form_rupiah, words
from api.web import (
    HTML,
    CsrfDep,
    lang_of,
    page_responses,
    refusal,
    refusal_reason,
    render,
    text,
    to_login,
)
from wastebank import access, ledger, passbook, reports
from wastebank.estimates import FIGURES, sum_impacts

router = APIRouter(tags=["pages"])


def _member_categories(
    session: Session, member: ledger.Member
) -> list[tuple[ledger.Category, int]]:
    """The member's deposited grams per category, voided deposits left out."""
    voided = select(ledger.DepositVoid.deposit_id)
    rows = session.execute(
        select(ledger.Category, func.sum(ledger.Deposit.net_g))
        .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
        .where(ledger.Deposit.member_id == member.id, ledger.Deposit.id.not_in(voided))
        .group_by(ledger.Category.id)
        .order_by(func.sum(ledger.Deposit.net_g).desc())
    )
    return [(cat, int(grams or 0)) for cat, grams in rows]


def _member_context(
    session: Session, who: access.Principal, member: ledger.Member, lang: str
) -> dict[str, Any]:
    bal = members_api.balance_of(session, who, member)
    tz = ZoneInfo(member.bank.city.timezone)
    statement = passbook.statement(session, member.member_no)
    lines = list(reversed(statement.lines))[:15]
    cats = _member_categories(session, member)
    estimator = reports.default_estimator()
    # net CO2e over the member's deposits, central first with its range (None: no estimator)
    net_co2e = (
        sum_impacts(estimator.impact(c.material_class, g) for c, g in cats).net_co2e_kg
        if estimator
        else None
    )
    names = [(c.name_en if lang == "en" else c.name_id) for c, _ in cats]
    withdrawals = members_api.withdrawals_of(session, member)
    return {
        "balance": bal,
        "bank_name": member.bank.name,
        "tz": tz,
        "lines": lines,
        "categories": [{"name": n, "net_g": g} for n, (_, g) in zip(names, cats, strict=True)],
        "impact": {"kept_g": sum(g for _, g in cats), "net_co2e_kg": net_co2e},
        "co2e_figure": figure_text(FIGURES["net_co2e_kg"], "en" if lang == "en" else "id"),
        "central_text": central_text,
        "span_text": span_text,
        "withdrawals": [members_api.withdrawal_out(w, personal=True) for w in withdrawals[:10]],
        "methods": [m.value for m in ledger.PayoutMethod],
        "min_withdrawal": member.bank.min_withdrawal_idr,
        "chart_data": {
            "locale": "en-GB" if lang == "en" else "id-ID",
            "categories": {
                "title": text("by_category", "en" if lang == "en" else "id"),
                "labels": names,
                "kg": [round(g / 1000, 3) for _, g in cats],
            },
        },
    }


def _member_page(
    request: Request,
    state: State,
    session: Session,
    who: access.Principal,
    member_no: str,
    *,
    notice: str | None = None,
    form_error: str | None = None,
    status: int = 200,
) -> Response:
    member = ledger.get_member(session, member_no)
    if member is None or not access.can_see_personal(who, member):
        return refusal(
            request,
            state["signing_key"],
            who,
            404,
            f"nasabah {member_no} tidak ditemukan / member not found",
        )
    context = _member_context(session, who, member, lang_of(request))
    context |= {"notice": notice, "form_error": form_error, "path": f"/nasabah/{member_no}"}
    return render(request, state["signing_key"], who, "member.html", context, status=status)


@router.get(
    "/nasabah/{member_no}",
    response_class=Response,
    responses={200: HTML, **page_responses(404)},
)
def member_page(
    request: Request, member_no: str, state: StateDep, session: SessionDep, who: PagePrincipalDep
) -> Response:
    """The member's page: balance, dampak saya, deposits by category, withdrawals and the
    passbook; after login, for the member, their bank's attendants and admins (it shows the
    name)."""
    if who is None:
        return to_login(request)
    notice = None
    if request.query_params.get("ok") == "penarikan":
        notice = text("requested_ok", lang_of(request))
    return _member_page(request, state, session, who, member_no, notice=notice)


@router.post(
    "/nasabah/{member_no}/penarikan",
    response_class=Response,
    status_code=303,
    responses=page_responses(400, 403, 404, 409, redirect="requested: back to the member's page"),
)
def member_withdrawal(
    request: Request,
    member_no: str,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    amount_idr: Annotated[
        str, Form(max_length=40, description="id-ID digits: 15.000 or 15000")
    ] = "",
    method: Annotated[str, Form(max_length=40)] = ledger.PayoutMethod.CASH.value,
    destination: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Request a withdrawal from the member's page: the member for themself, an attendant of
    their bank for them (the logic of POST /api/members/{no}/withdrawals). The amount is read as
    people type it, id-ID digits (``15.000`` is Rp15.000, not Rp15); what does not fit comes
    back on the page in words."""
    if who is None:
        return to_login(request, f"/nasabah/{member_no}")
    try:
        amount = form_rupiah(amount_idr)
        body = WithdrawalIn.model_validate(
            {"amount_idr": amount, "method": method, "destination": destination or None}
        )
    except ValueError as exc:  # a ValidationError is one too
        why = words(exc) if isinstance(exc, ValidationError) else str(exc)
        return _again(request, state, who, member_no, 400, why)
    try:
        members_api.request_withdrawal(member_no, body, request_ctx(request, state, who))
    except (HTTPException, ledger.LedgerError, IntegrityError) as exc:
        status, reason = refusal_reason(exc)
        if status == 404:
            return refusal(request, state["signing_key"], who, 404, reason)
        if status == 403:
            return refusal(request, state["signing_key"], who, 403, reason)
        return _again(request, state, who, member_no, status, reason)
    return RedirectResponse(f"/nasabah/{quote(member_no)}?ok=penarikan", status_code=303)


def _again(
    request: Request, state: State, who: access.Principal, member_no: str, status: int, why: str
) -> Response:
    with Session(state["engine"]) as session:
        return _member_page(request, state, session, who, member_no, form_error=why, status=status)


@router.get(
    "/nasabah/{member_no}/buku-tabungan",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}, "text/csv": {}}, "description": "the file"},
        **page_responses(404),
    },
)
def member_statement(
    request: Request,
    member_no: str,
    state: StateDep,
    session: SessionDep,
    who: PagePrincipalDep,
    format: Literal["pdf", "csv"] = "pdf",  # noqa: A002
) -> Response:
    """The passbook as a download, from the member's page (as GET .../statement)."""
    if who is None:
        return to_login(request)
    member = ledger.get_member(session, member_no)
    if member is None or not access.can_see_personal(who, member):
        return refusal(request, state["signing_key"], who, 404, f"nasabah {member_no}")
    st = passbook.statement(session, member.member_no)
    name = f"buku-tabungan-{member.member_no}"
    if format == "csv":
        body, media = passbook.statement_csv(st).encode(), "text/csv; charset=utf-8"
    else:
        body, media = passbook.statement_pdf(st), "application/pdf"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{name}.{format}")
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{safe}"',
            "Cache-Control": "private, no-store",
        },
    )
