"""The admin pages, on the page session cookie (admins only).

  GET  /admin                           banks
  GET|POST /admin/harga/{bank}          a bank's price list; set a price (as PUT .../prices/...)
  GET|POST /admin/impor                 member import from CSV/XLSX (wastebank/bulk_import/)
  GET|POST /admin/perangkat             the broker's device registry (wastebank/devices/)

What every page shares: api/web.py.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import bank as bank_api
from api.deps import PagePrincipalDep, SessionDep, State, StateDep, request_ctx
from api.schemas import PriceIn
from api.validation import form_rupiah, words
from api.web import (
    HTML,
    CsrfDep,
    page_responses,
    refusal,
    refusal_reason,
    render,
    text,
    to_login,
)
from wastebank import access, bulk_import, formats, ledger

router = APIRouter(tags=["pages"])


def _admin_or_refusal(
    request: Request, state: State, who: access.Principal | None
) -> Response | None:
    if who is None:
        return to_login(request)
    if who.role != access.Role.ADMIN:
        return refusal(request, state["signing_key"], who, 403)
    return None


@router.get("/admin", response_class=Response, responses={200: HTML, **page_responses(403)})
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
    "/admin/harga/{bank_code}",
    response_class=Response,
    responses={200: HTML, **page_responses(403, 404)},
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
    responses=page_responses(400, 403, 404, 409, redirect="saved: back to the price list"),
)
def admin_set_price(
    request: Request,
    bank_code: str,
    state: StateDep,
    who: PagePrincipalDep,
    _csrf: CsrfDep,
    category_code: Annotated[str, Form(max_length=64)],
    price_idr: Annotated[str, Form(max_length=40, description="id-ID digits: 4.500 or 4500")],
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
        body = PriceIn(price_idr=form_rupiah(price_idr, "price_idr"), effective_from=since)
        bank_api.set_price(bank_code, category_code, body, request_ctx(request, state, who))
    except (ValueError, OverflowError) as exc:
        why = words(exc) if isinstance(exc, ValidationError) else str(exc)
        return _prices_page(request, state, who, bank_code, form_error=why, status=400)
    except (HTTPException, ledger.LedgerError, IntegrityError) as exc:
        status, reason = refusal_reason(exc)
        if status == 404 and "bank" in reason:
            return refusal(request, state["signing_key"], who, 404, reason)
        status = 400 if status in (404, 422) else status
        return _prices_page(request, state, who, bank_code, form_error=reason, status=status)
    return RedirectResponse(f"/admin/harga/{quote(bank_code)}?ok=1", status_code=303)


@router.get("/admin/impor", response_class=Response, responses={200: HTML, **page_responses(403)})
def admin_import_page(request: Request, state: StateDep, who: PagePrincipalDep) -> Response:
    """The member import form (CSV or XLSX, as `wastebank import members`)."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    return render(request, state["signing_key"], who, "admin_import.html", {})


@router.post(
    "/admin/impor", response_class=Response, responses={200: HTML, **page_responses(400, 403, 413)}
)
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
    ctx = request_ctx(request, state, who)

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


def _run_dir(state: State) -> Path | None:
    """The broker's run dir from ``[pages] broker_run_dir``, which may name it or its
    ``mosquitto/`` (one rule: devices.registry_run_dir); as set while it holds no registry."""
    from wastebank import devices

    configured: Path | None = state["settings"].pages.broker_run_dir
    if configured is None:
        return None
    return devices.registry_run_dir(configured) or configured


def _registry(state: State) -> Any:
    from wastebank import devices

    run_dir = _run_dir(state)
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

    listed = None
    try:
        registry = _registry(state)
        listed = registry.devices() if registry is not None else None
    except devices.DeviceError as exc:
        form_error, listed = str(exc), []
    context = {
        "devices": listed,
        "issued": issued,
        "form_error": form_error,
        "path": "/admin/perangkat",
    }
    return render(request, state["signing_key"], who, "admin_devices.html", context, status=status)


@router.get(
    "/admin/perangkat", response_class=Response, responses={200: HTML, **page_responses(403)}
)
def admin_devices(request: Request, state: StateDep, who: PagePrincipalDep) -> Response:
    """The devices allowed on the broker's TLS listener (when its files are on this machine)."""
    if (refused := _admin_or_refusal(request, state, who)) is not None:
        return refused
    assert who is not None
    return _devices_page(request, state, who)


@router.post(
    "/admin/perangkat",
    response_class=Response,
    responses={200: HTML, **page_responses(400, 403, 409)},
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
    try:
        registry, run_dir = _registry(state), _run_dir(state)
    except devices.DeviceError as exc:
        return _devices_page(request, state, who, form_error=str(exc), status=409)
    if registry is None or run_dir is None:
        why = f"{text('devices_not_local', 'id')} / {text('devices_not_local', 'en')}"
        return _devices_page(request, state, who, form_error=why, status=409)
    ctx = request_ctx(request, state, who)

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
