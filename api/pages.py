"""The HTML pages for citizens (nasabah), DLH staff and admins, on the page session cookie.

  GET  /nasabah/{no}                    the member's page: balance, dampak saya, deposits by
                                        category, withdrawals, passbook (the member, their
                                        bank's attendants, admins; anyone else: 404)
  POST /nasabah/{no}/penarikan          request a withdrawal (as POST /api/members/{no}/withdrawals)
  GET  /nasabah/{no}/buku-tabungan      the passbook as PDF or CSV (as .../statement)
  GET  /dlh                             DLH dashboard (DLH of the city, admins)
  GET  /dlh/laporan?month=&format=      the monthly report (as /api/dlh/report/monthly)
  GET  /admin                           banks (admins)
  GET|POST /admin/harga/{bank}          a bank's price list; set a price (as PUT .../prices/...)
  GET|POST /admin/impor                 member import from CSV/XLSX (wastebank/bulk_import.py)
  GET|POST /admin/perangkat             the broker's device registry (wastebank/devices.py)

Not signed in: 303 to /masuk. Signed in but not allowed: a 403 page (404 for a member's pages,
as the JSON API does: a member number's existence is not disclosed). Every form that changes
state carries the CSRF token (api/web.py). The pages call the same services and route logic as
the JSON API (api/members.py, api/bank.py, api/dlh.py, api/tps.py); the queries they need that
the API has not are here.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import bank as bank_api
from api import dlh as dlh_api
from api import members as members_api
from api import tps as tps_api
from api.deps import (
    Ctx,
    PagePrincipalDep,
    SessionDep,
    State,
    StateDep,
    refusal_detail,
    refusals,
)
from api.schemas import PriceIn, WithdrawalIn
from api.web import HTML, CsrfDep, Lang, lang_of, refusal, render, text
from wastebank import access, bulk_import, formats, ledger, passbook, reports
from wastebank.influx import InfluxError

router = APIRouter(tags=["pages"])


def _html(*codes: int, redirect: str | None = None) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        303: {"description": redirect or "not signed in: to the login page"}
    }
    descriptions = {
        400: "the form is invalid: the page again, with the reason",
        403: "not allowed, or a form without a valid CSRF token",
        404: "not found, or not visible to the caller",
        409: "refused by the ledger: the page again, with the reason",
        413: "the upload would unpack to too much (a zip bomb?): the page again, with the reason",
        503: "a service the page needs is unreachable",
    }
    for code in codes:
        out[code] = {"description": descriptions[code], **HTML}
    return out


def _to_login(request: Request, path: str | None = None) -> RedirectResponse:
    return RedirectResponse(f"/masuk?next={quote(path or request.url.path)}", status_code=303)


def _ctx(request: Request, state: State, p: access.Principal) -> Ctx:
    actor = access.Actor(
        name=p.username,
        role=p.role,
        user_id=p.user_id,
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    return Ctx(state=state, principal=p, actor=actor)


def _refusal_reason(exc: Exception) -> tuple[int, str]:
    """A refusal from the route logic or the ledger as (status, reason) for a page."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, ledger.LedgerError):
        return 409, refusal_detail(exc)
    if isinstance(exc, IntegrityError):
        return 409, "bentrok dengan data yang ada / conflicts with existing data"
    return 400, str(exc)


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in exc.errors())


# ---- the citizen ------------------------------------------------------------------------------


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
    co2e = 0.0
    for cat, grams in cats:
        value = estimator.co2e_avoided_kg(cat.material_class, grams) if estimator else None
        co2e += value or 0.0
    names = [(c.name_en if lang == "en" else c.name_id) for c, _ in cats]
    withdrawals = members_api.withdrawals_of(session, member)
    return {
        "balance": bal,
        "bank_name": member.bank.name,
        "tz": tz,
        "lines": lines,
        "categories": [{"name": n, "net_g": g} for n, (_, g) in zip(names, cats, strict=True)],
        "impact": {"kept_g": sum(g for _, g in cats), "co2e_kg": co2e},
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
    responses={200: HTML, **_html(404)},
)
def member_page(
    request: Request, member_no: str, state: StateDep, session: SessionDep, who: PagePrincipalDep
) -> Response:
    """The member's page: balance, dampak saya, deposits by category, withdrawals and the
    passbook; after login, for the member, their bank's attendants and admins (it shows the
    name)."""
    if who is None:
        return _to_login(request)
    notice = None
    if request.query_params.get("ok") == "penarikan":
        notice = text("requested_ok", lang_of(request))
    return _member_page(request, state, session, who, member_no, notice=notice)


@router.post(
    "/nasabah/{member_no}/penarikan",
    response_class=Response,
    status_code=303,
    responses=_html(400, 403, 404, 409, redirect="requested: back to the member's page"),
)
def member_withdrawal(
    request: Request,
    member_no: str,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    amount_idr: Annotated[int, Form(ge=1, le=10**12)],
    method: Annotated[ledger.PayoutMethod, Form()] = ledger.PayoutMethod.CASH,
    destination: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Request a withdrawal from the member's page: the member for themself, an attendant of
    their bank for them (the logic of POST /api/members/{no}/withdrawals)."""
    if who is None:
        return _to_login(request, f"/nasabah/{member_no}")
    try:
        body = WithdrawalIn(amount_idr=amount_idr, method=method, destination=destination or None)
        members_api.request_withdrawal(member_no, body, _ctx(request, state, who))
    except ValidationError as exc:
        return _again(request, state, who, member_no, 400, _validation_text(exc))
    except (HTTPException, ledger.LedgerError, IntegrityError) as exc:
        status, reason = _refusal_reason(exc)
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
        **_html(404),
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
        return _to_login(request)
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


# ---- DLH --------------------------------------------------------------------------------------


def _city_staff(who: access.Principal) -> bool:
    return who.role in (access.Role.DLH, access.Role.ADMIN)


def _month_start(day: date, back: int) -> date:
    """The first day of the month ``back`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _dlh_data(state: State, p: access.Principal) -> dict[str, Any]:
    """The dashboard's ledger figures, through the functions behind /api/dlh/*."""
    settings = state["settings"].reports

    def work(session: Session, scope: reports.Scope) -> dict[str, Any]:
        today = datetime.now(scope.tz).date()
        start = _month_start(today, 11)
        by_month = reports.tonnage(session, scope, start, today, "category", "month")
        by_kec = reports.tonnage(session, scope, start, today, "kecamatan", "total")
        by_cat = reports.tonnage(session, scope, start, today, "category", "total")
        reduction: reports.Reduction | None = None
        reduction_error = None
        try:
            reduction = reports.reduction(session, scope, today.year, settings)
        except (reports.NoGenerationEstimate, ValueError) as exc:
            reduction_error = str(exc)
        return {
            "scope": scope,
            "today": today,
            "start": start,
            "by_month": by_month,
            "by_kec": by_kec,
            "by_cat": by_cat,
            "reduction": reduction,
            "reduction_error": reduction_error,
        }

    return dlh_api.read_in_city(state, p, None, work)


def _dlh_context(
    data: dict[str, Any], tps_rows: list[tps_api.TpsOut] | None, settings: Any, lang: Lang
) -> dict[str, Any]:
    """The DLH dashboard's template context: the tables, the estimates, the report months and
    the charts' data, from :func:`_dlh_data`'s figures and the TPS overview (None: InfluxDB
    unreachable)."""
    scope: reports.Scope = data["scope"]
    today: date = data["today"]
    names = _CategoryNames(scope, lang)
    months = _MonthTable.of(data["by_month"], data["by_cat"], today, lang)
    kec_rows = sorted(data["by_kec"].rows, key=lambda r: -r.net_g)
    estimates = _estimates(data["by_cat"], names)
    return {
        "city_name": scope.city_name,
        "zone": formats.zone_label(scope.tz),
        "tz": scope.tz,
        "start": data["start"],
        "end": today,
        "year": today.year,
        "reduction": data["reduction"],
        "reduction_error": data["reduction_error"],
        "month_categories": [{"code": c, "name": names(c)} for c in months.codes],
        "month_table": months.rows(),
        "kecamatan_rows": kec_rows,
        "estimates": estimates,
        "estimates_total": {
            "net_g": sum(e["net_g"] for e in estimates),
            "co2e_kg": sum(e["co2e_kg"] or 0.0 for e in estimates),
            "energy_kwh": sum(e["energy_kwh"] or 0.0 for e in estimates),
        },
        "report_months": [
            {"value": f"{m:%Y-%m}", "label": formats.bulan(m, lang)}
            for m in [_month_start(today, back) for back in range(0, 12)]
        ],
        "tps": tps_rows,
        "needs_vendor": True,
        "chart_data": {
            "locale": "en-GB" if lang == "en" else "id-ID",
            "months": {"labels": months.labels, "datasets": months.datasets(names)},
            "kecamatan": {
                "title": text("tonnage_kecamatan", lang),
                "labels": [r.name for r in kec_rows],
                "kg": [round(r.net_g / 1000, 3) for r in kec_rows],
            },
            "tps": _tps_points(tps_rows or []),
            "offlineText": text("offline", lang),
            "tiles": {"url": settings.map_tile_url, "attribution": settings.map_tile_attribution},
        },
    }


class _CategoryNames:
    """A category's name in the page's language, by its code (the code itself if unknown)."""

    def __init__(self, scope: reports.Scope, lang: Lang) -> None:
        self.by_code = {c.code: c for c in scope.categories.values()}
        self.lang = lang

    def __call__(self, code: str) -> str:
        c = self.by_code.get(code)
        if c is None:
            return code
        return c.name_en if self.lang == "en" else c.name_id


@dataclass(frozen=True)
class _MonthTable:
    """The last twelve months' grams per category, the categories by their total, largest
    first."""

    months: list[date]
    labels: list[str]
    codes: list[str]
    grams: dict[tuple[date, str], int]

    @classmethod
    def of(
        cls, by_month: reports.Tonnage, by_cat: reports.Tonnage, today: date, lang: Lang
    ) -> _MonthTable:
        months = [_month_start(today, back) for back in range(11, -1, -1)]
        grams: dict[tuple[date, str], int] = defaultdict(int)
        for r in by_month.rows:
            grams[r.period_start, r.key] += r.net_g
        return cls(
            months=months,
            labels=[formats.bulan(m, lang) for m in months],
            codes=[r.key for r in sorted(by_cat.rows, key=lambda r: -r.net_g)],
            grams=grams,
        )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "label": label,
                "cells": [self.grams[m, c] for c in self.codes],
                "total": sum(self.grams[m, c] for c in self.codes),
            }
            for m, label in zip(self.months, self.labels, strict=True)
        ]

    def datasets(self, names: _CategoryNames) -> list[dict[str, Any]]:
        return [
            {"label": names(c), "kg": [round(self.grams[m, c] / 1000, 3) for m in self.months]}
            for c in self.codes
        ]


def _estimates(by_cat: reports.Tonnage, names: _CategoryNames) -> list[dict[str, Any]]:
    """Energy and CO2e avoided per category, largest first (None where no factor applies)."""
    estimator = reports.default_estimator()
    out: list[dict[str, Any]] = []
    for r in sorted(by_cat.rows, key=lambda r: -r.net_g):
        c = names.by_code.get(r.key)
        material = c.material_class if c else "other"
        out.append(
            {
                "name": names(r.key),
                "net_g": r.net_g,
                "co2e_kg": estimator.co2e_avoided_kg(material, r.net_g) if estimator else None,
                "energy_kwh": estimator.energy_kwh(material, r.net_g) if estimator else None,
            }
        )
    return out


def _tps_points(tps_rows: list[tps_api.TpsOut]) -> list[dict[str, Any]]:
    """The map's markers."""
    return [
        {
            "code": t.code,
            "name": t.name,
            "kecamatan": t.kecamatan,
            "lat": t.lat,
            "lon": t.lon,
            "fill": t.fill,
            "offline": t.offline,
            "alert": bool(t.active_alerts),
            "raise": t.alert_raise_fill,
        }
        for t in tps_rows
    ]


@router.get("/dlh", response_class=Response, responses={200: HTML, **_html(403)})
async def dlh_page(request: Request, state: StateDep, who: PagePrincipalDep) -> Response:
    """The DLH dashboard: tonnage by month, category and kecamatan, the reduction share against
    the Jakstrada target, TPS status and map, energy and emission estimates, the monthly report.
    """
    if who is None:
        return _to_login(request)
    if not _city_staff(who):
        return refusal(request, state["signing_key"], who, 403)
    lang = lang_of(request)
    data = await anyio.to_thread.run_sync(_dlh_data, state, who)
    tps_rows: list[tps_api.TpsOut] | None
    try:
        tps_rows = await tps_api.tps_overview(state, who)
    except HTTPException as exc:
        if exc.status_code != 503:
            raise
        tps_rows = None
    # in a thread: the estimates read their coefficient files the first time
    context = await anyio.to_thread.run_sync(
        _dlh_context, data, tps_rows, state["settings"].pages, lang
    )
    context["diversion"] = await _month_diversion(state, who, data["today"])
    return render(request, state["signing_key"], who, "dlh.html", context)


async def _month_diversion(
    state: State, who: access.Principal, today: date
) -> dlh_api.Diversion | None:
    """This month's diversion rate so far; None when the fill readings cannot be read."""
    try:
        return await dlh_api.diversion_of(state, who, None, lambda _: (today.replace(day=1), today))
    except InfluxError:
        return None


@router.get(
    "/dlh/laporan",
    response_class=Response,
    responses={
        200: {
            "description": "the report file",
            "content": {media: {} for media in reports.MEDIA_TYPES.values()},
        },
        **_html(403),
        **refusals(422),
    },
)
async def dlh_report(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    month: Annotated[str, Query(pattern=r"^(19|20)\d\d-(0[1-9]|1[0-2])$", examples=["2026-10"])],
    format: Annotated[Literal["xlsx", "csv", "pdf"], Query()] = "xlsx",  # noqa: A002
) -> Response:
    """The monthly DLH report from the dashboard (as GET /api/dlh/report/monthly)."""
    if who is None:
        return _to_login(request)
    if not _city_staff(who):
        return refusal(request, state["signing_key"], who, 403)
    return await dlh_api.monthly(state, who, month, format, None)


# ---- admin ------------------------------------------------------------------------------------


def _admin_or_refusal(
    request: Request, state: State, who: access.Principal | None
) -> Response | None:
    if who is None:
        return _to_login(request)
    if who.role != access.Role.ADMIN:
        return refusal(request, state["signing_key"], who, 403)
    return None


@router.get("/admin", response_class=Response, responses={200: HTML, **_html(403)})
def admin_page(
    request: Request, state: StateDep, session: SessionDep, who: PagePrincipalDep
) -> Response:
    """Admins: the waste banks, with links to their price lists."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    return render(
        request, state["signing_key"], who, "admin.html", {"banks": bank_api.banks(session)}
    )


def _prices_page(
    request: Request,
    state: State,
    who: access.Principal,
    bank_code: str,
    *,
    notice: str | None = None,
    form_error: str | None = None,
    status: int = 200,
) -> Response:
    with Session(state["engine"]) as session:
        bank = session.scalar(select(ledger.Bank).where(ledger.Bank.code == bank_code))
        if bank is None:
            return refusal(request, state["signing_key"], who, 404, f"bank {bank_code}")
        tz = ZoneInfo(bank.city.timezone)
        context = {
            "bank": bank,
            "tz": tz,
            "zone": formats.zone_label(tz),
            "price_list": bank_api.prices(bank.code, session),
            "categories": list(
                session.scalars(select(ledger.Category).order_by(ledger.Category.code))
            ),
            "notice": notice,
            "form_error": form_error,
            "path": f"/admin/harga/{bank.code}",
        }
        return render(
            request, state["signing_key"], who, "admin_prices.html", context, status=status
        )


@router.get(
    "/admin/harga/{bank_code}", response_class=Response, responses={200: HTML, **_html(403, 404)}
)
def admin_prices(
    request: Request, bank_code: str, state: StateDep, who: PagePrincipalDep
) -> Response:
    """A bank's price list in force, and the form to set a price."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    notice = text("price_saved", "id") + " / " + text("price_saved", "en")
    ok = request.query_params.get("ok") == "1"
    return _prices_page(request, state, who, bank_code, notice=notice if ok else None)


@router.post(
    "/admin/harga/{bank_code}",
    response_class=Response,
    status_code=303,
    responses=_html(400, 403, 404, 409, redirect="saved: back to the price list"),
)
def admin_set_price(
    request: Request,
    bank_code: str,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    category_code: Annotated[str, Form(max_length=64)],
    price_idr: Annotated[int, Form(ge=0, le=10**9)],
    effective_from: Annotated[
        str | None, Form(max_length=40, description="local time, e.g. 2026-12-01T08:00")
    ] = None,
) -> Response:
    """Set a price (the logic of PUT /api/banks/{bank}/prices/{category})."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    since: datetime | None = None
    try:
        if effective_from:
            with Session(state["engine"]) as session:
                bank = session.scalar(select(ledger.Bank).where(ledger.Bank.code == bank_code))
                zone = ZoneInfo(bank.city.timezone if bank else state["settings"].default_timezone)
            since = datetime.fromisoformat(effective_from)
            since = (since if since.tzinfo else since.replace(tzinfo=zone)).astimezone(UTC)
        body = PriceIn(price_idr=price_idr, effective_from=since)
        bank_api.set_price(bank_code, category_code, body, _ctx(request, state, who))
    except (ValueError, OverflowError) as exc:
        why = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
        return _prices_page(request, state, who, bank_code, form_error=why, status=400)
    except (HTTPException, ledger.LedgerError, IntegrityError) as exc:
        status, reason = _refusal_reason(exc)
        if status == 404 and "bank" in reason:
            return refusal(request, state["signing_key"], who, 404, reason)
        status = 400 if status in (404, 422) else status
        return _prices_page(request, state, who, bank_code, form_error=reason, status=status)
    return RedirectResponse(f"/admin/harga/{quote(bank_code)}?ok=1", status_code=303)


@router.get("/admin/impor", response_class=Response, responses={200: HTML, **_html(403)})
def admin_import_page(request: Request, state: StateDep, who: PagePrincipalDep) -> Response:
    """The member import form (CSV or XLSX, as `wastebank import members`)."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    return render(request, state["signing_key"], who, "admin_import.html", {})


@router.post("/admin/impor", response_class=Response, responses={200: HTML, **_html(400, 403, 413)})
async def admin_import(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    file: Annotated[UploadFile, File(description="CSV or XLSX: the member list")],
    mode: Annotated[bulk_import.Mode, Form()] = bulk_import.Mode.ALL_OR_NOTHING,
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Import members from the uploaded list and show the row report."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    key = state["signing_key"]
    name = Path(file.filename or "impor.csv").name
    suffix = Path(name).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        why = "hanya CSV atau XLSX / CSV or XLSX only"
        return render(
            request,
            key,
            who,
            "admin_import.html",
            {"form_error": why, "path": "/admin/impor"},
            status=400,
        )
    # at most WASTEBANK_HTTP__MAX_UPLOAD_BYTES: the body limit (api/limits.py) refused more
    data = await file.read()
    nik = state["settings"].nik_key
    limits = state["settings"].imports
    ctx = _ctx(request, state, who)

    def run() -> bulk_import.ImportReport:
        with tempfile.TemporaryDirectory(prefix="wastebank-import-") as tmp:
            path = Path(tmp) / (Path(name).stem[:80] + suffix)
            path.write_bytes(data)
            report = bulk_import.import_members(
                state["writer"],
                path,
                mode=mode,
                dry_run=dry_run,
                nik_key=nik.get_secret_value().encode() if nik else None,
                limits=limits,
            )
        if report.imported and not dry_run:
            with ctx.write() as s:
                ctx.audit(s, "member.import", "import", name, f"{report.imported} imported")
        return report

    try:
        report = await anyio.to_thread.run_sync(run)
    except bulk_import.ArchiveTooLarge as exc:  # a zip bomb, or a list too large for one go
        why = f"berkas terlalu besar jika dibuka / file too large unpacked: {exc}"
        return render(
            request,
            key,
            who,
            "admin_import.html",
            {"form_error": why, "path": "/admin/impor"},
            status=413,
        )
    except bulk_import.ImportFileError as exc:
        why = f"berkas tidak terbaca / unreadable file: {exc}"
        return render(
            request,
            key,
            who,
            "admin_import.html",
            {"form_error": why, "path": "/admin/impor"},
            status=400,
        )
    summary = (
        f"{report.imported} diimpor / imported, {report.refused} ditolak / refused, "
        f"{len(report.rows)} baris / rows" + (" (uji coba / dry run)" if dry_run else "")
    )
    context = {
        "report": report,
        "summary": summary,
        "status_labels": bulk_import.STATUS_LABELS,
        "path": "/admin/impor",
    }
    return render(request, key, who, "admin_import.html", context)


def _registry(state: State) -> Any:
    from wastebank import devices

    run_dir = state["settings"].pages.broker_run_dir
    if run_dir is None:
        return None
    return devices.Registry(devices.broker_auth_files(run_dir))


def _devices_page(
    request: Request,
    state: State,
    who: access.Principal,
    *,
    issued: Any = None,
    form_error: str | None = None,
    status: int = 200,
) -> Response:
    from wastebank import devices

    registry = _registry(state)
    listed = None
    if registry is not None:
        try:
            listed = registry.devices()
        except devices.DeviceError as exc:
            form_error, listed = str(exc), []
    context = {
        "devices": listed,
        "issued": issued,
        "form_error": form_error,
        "path": "/admin/perangkat",
    }
    return render(request, state["signing_key"], who, "admin_devices.html", context, status=status)


@router.get("/admin/perangkat", response_class=Response, responses={200: HTML, **_html(403)})
def admin_devices(request: Request, state: StateDep, who: PagePrincipalDep) -> Response:
    """The devices allowed on the broker's TLS listener (when its files are on this machine)."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    return _devices_page(request, state, who)


@router.post(
    "/admin/perangkat", response_class=Response, responses={200: HTML, **_html(400, 403, 409)}
)
async def admin_add_device(
    request: Request,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    kind: Annotated[Literal["gateway", "sensor"], Form()],
    site: Annotated[str, Form(max_length=64)],
    device_id: Annotated[str, Form(max_length=64)],
) -> Response:
    """Add a gateway or TPS sensor to the broker's registry (as `wastebank device add`): its
    password is shown once."""
    from wastebank import devices

    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    registry = _registry(state)
    if registry is None:
        why = f"{text('devices_not_local', 'id')} / {text('devices_not_local', 'en')}"
        return _devices_page(request, state, who, form_error=why, status=409)
    run_dir = state["settings"].pages.broker_run_dir
    assert run_dir is not None  # as the registry is
    ctx = _ctx(request, state, who)

    def add() -> Response:  # and the page, which reads the registry's files: off the loop
        try:
            issued = registry.add(devices.Device(kind=kind, site=site, device_id=device_id))
            devices.reload_mosquitto(run_dir)
            with ctx.write() as s:
                ctx.audit(
                    s, "device.add", "device", issued.device.username, issued.device.describe()
                )
        except devices.DeviceError as exc:
            status = 409 if isinstance(exc, devices.DeviceConflict) else 400  # registered already
            return _devices_page(request, state, who, form_error=str(exc), status=status)
        return _devices_page(request, state, who, issued=issued)

    return await anyio.to_thread.run_sync(add)
