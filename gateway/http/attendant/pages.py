"""The attendant page itself, its script, and the login and logout of its forms:

GET  /petugas                          the page (the login form when not signed in)
POST /petugas/masuk, /petugas/keluar   log in (form), log out
GET  /petugas/attendant.js             the page's script
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gateway.http.attendant.auth import (
    BAD_CSRF,
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    Service,
    https,
)
from gateway.http.attendant.service import AttendantService, LoginRefused, SignedIn
from gateway.http.attendant.session import clear_session, set_session, start_session

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

log = logging.getLogger("wastebank.gateway")

GATEWAY_DIR: Final = Path(__file__).resolve().parents[2]
"""gateway/: its templates/ and static/ ship with the package (pyproject's package data)."""
SCRIPT: Final = GATEWAY_DIR / "static" / "attendant.js"

router = APIRouter(prefix="/petugas", tags=["attendant"])

_templates: list[Jinja2Templates] = []


def templates() -> Jinja2Templates:
    """The page's Jinja2 environment, made at the first page request."""
    if not _templates:
        from fastapi.templating import Jinja2Templates

        _templates.append(Jinja2Templates(directory=str(GATEWAY_DIR / "templates")))
    return _templates[0]


def page(
    service: AttendantService,
    request: Request,
    signed: SignedIn | None,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    s = service.gw.settings
    context: dict[str, object] = {
        "who": signed.who if signed else None,
        "csrf": signed.csrf if signed else None,
        "csrf_field": CSRF_FIELD,
        "error": error,
        "gateway_id": s.gateway_id,
        "bank_code": s.bank_code,
        "central": s.api_url is not None,
    }
    nonce = None
    if signed is None:  # the login form: its token, bound to a nonce cookie
        kept = request.cookies.get(LOGIN_COOKIE, "")
        nonce = kept if 16 <= len(kept) <= 64 else secrets.token_urlsafe(16)
        context["login_token"] = service.login_token(nonce)
    response = templates().TemplateResponse(
        request,
        "attendant.html",
        context,
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
    if nonce is not None and nonce != request.cookies.get(LOGIN_COOKIE):
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            path="/petugas",
            httponly=True,
            samesite="strict",
            secure=https(request),
        )
    return response


@router.get("", response_class=HTMLResponse)
async def attendant_page(request: Request, service: Service) -> HTMLResponse:
    return page(service, request, service.signed_in(request.cookies.get(COOKIE)))


@router.post("/masuk", response_class=HTMLResponse)
async def login(
    request: Request,
    service: Service,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not service.check(service.login_token(nonce), csrf_token):
        return page(service, request, None, BAD_CSRF, 403)
    if service.gw.settings.api_url is None:
        return page(service, request, None, "api_url belum diatur / api_url is not set", 503)
    try:
        who = await service.login(username.strip(), password)
    except LoginRefused as exc:
        return page(service, request, None, exc.message, exc.status, exc.headers())
    response = RedirectResponse("/petugas", status_code=303)
    cookie, _ = start_session(service, request, who)
    set_session(service, request, response, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/petugas", httponly=True, samesite="strict")
    return response


@router.post("/keluar")
async def logout(
    request: Request,
    service: Service,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> Response:
    signed = service.signed_in(request.cookies.get(COOKIE))
    if signed is not None:
        if not service.check(signed.csrf, csrf_token):
            raise HTTPException(403, BAD_CSRF)
        service.end_session(signed.sid)
        log.info("petugas keluar / attendant signed out: %s", signed.who.username)
    response = RedirectResponse("/petugas", status_code=303)
    clear_session(response)
    return response


@router.get("/attendant.js")
async def script() -> FileResponse:
    return FileResponse(SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
