"""The attendant's pages: the shared frame every page renders through (:func:`render`), the
weighing page itself, its static files, the banner's status, and the login and logout forms:

GET  /petugas                          the weighing page (the login form when not signed in)
POST /petugas/masuk, /petugas/keluar   log in (form), log out
GET  /petugas/static/{name}            the pages' scripts and styles (gateway/static/*.js, *.css)
GET  /petugas/api/status               the banner's status: broker, outbox, central API, voids

**The page contract.** A page is a template that ``{% extends "petugas_base.html" %}`` (blocks
``title``, ``content``, ``scripts``; ``{% set active = "<nav key>" %}`` for its tab) rendered
by :func:`render`, which gives every template the frame's context (who, the CSRF token, the
bank's name, the zone) and answers the login form instead when nobody is signed in. Its styles
are ``/petugas/static/petugas.css`` and its shared script ``/petugas/static/petugas.js``
(``window.WB``), both loaded by the frame.
"""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from gateway.http.attendant import auth
from gateway.http.attendant.auth import (
    BAD_CSRF,
    COOKIE,
    CSRF_FIELD,
    LOGIN_COOKIE,
    client_address,
    https,
)
from gateway.http.attendant.service import AttendantService, LoginRefused, SignedIn
from gateway.http.attendant.session import clear_session, set_session, start_session
from gateway.http.fields import Form
from gateway.http.routing import Routes, parse_form, path_param
from wastebank.formats import zone_label

if TYPE_CHECKING:
    from starlette.templating import Jinja2Templates

log = logging.getLogger("wastebank.gateway")

GATEWAY_DIR: Final = Path(__file__).resolve().parents[2]
"""gateway/: its templates/ and static/ ship with the package (pyproject's package data)."""
STATIC_DIR: Final = GATEWAY_DIR / "static"
STATIC_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(js|css)$")
"""A static file's name: letters, digits, - and _, then .js or .css; nothing else is served
(no path, no dot files, no other type)."""
STATIC_TYPES: Final = {"js": "text/javascript", "css": "text/css"}
LOGIN_TEMPLATE: Final = "petugas_login.html"
NEXT_PATH: Final = re.compile(r"^/petugas(/[A-Za-z0-9_-]+)*$")
"""Where a login may return to: a page of the attendant's app, nothing else (no open redirect)."""

routes = Routes(prefix="/petugas")

_templates: list[Jinja2Templates] = []


def templates() -> Jinja2Templates:
    """The pages' Jinja2 environment, made at the first page request."""
    if not _templates:
        from starlette.templating import Jinja2Templates

        _templates.append(Jinja2Templates(directory=str(GATEWAY_DIR / "templates")))
    return _templates[0]


def bank_name(service: AttendantService) -> str:
    """The bank's name as the central API last gave it (the directory sync); its code until
    the gateway has synced once."""
    return service.db.directory.bank_name() or service.gw.settings.bank_code


def back_to(wanted: str) -> str:
    """Where a login returns: ``wanted`` when it is a page of the app, else the weighing page."""
    if NEXT_PATH.match(wanted) and wanted not in ("/petugas/masuk", "/petugas/keluar"):
        return wanted
    return "/petugas"


def render(
    service: AttendantService,
    request: Request,
    signed: SignedIn | None,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> HTMLResponse:
    """A page of the attendant's app: ``template`` with the frame's context and ``extra``; the
    login form (:data:`LOGIN_TEMPLATE`, ``extra["error"]`` shown on it) when ``signed`` is None.
    Never cached (it carries the CSRF token and the attendant's data)."""
    s = service.gw.settings
    context: dict[str, object] = {
        "who": signed.who if signed else None,
        "csrf": signed.csrf if signed else None,
        "csrf_field": CSRF_FIELD,
        "error": None,
        "gateway_id": s.gateway_id,
        "bank_code": s.bank_code,
        "bank_name": bank_name(service),
        "timezone": service.settings.timezone,
        "zone": zone_label(service.tz),
        "central": s.api_url is not None,
        **extra,
    }
    nonce = None
    if signed is None:  # the login form: its token, bound to a nonce cookie
        template = LOGIN_TEMPLATE
        kept = request.cookies.get(LOGIN_COOKIE, "")
        nonce = kept if 16 <= len(kept) <= 64 else secrets.token_urlsafe(16)
        context["login_token"] = service.login_token(nonce)
        context["next"] = back_to(str(extra.get("next") or request.query_params.get("next") or ""))
    response = templates().TemplateResponse(
        request,
        template,
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


def page(
    service: AttendantService,
    request: Request,
    signed: SignedIn | None,
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The weighing page (the login form when not signed in)."""
    return render(
        service, request, signed, "attendant.html", status=status, headers=headers, error=error
    )


def error_page(request: Request, error: str, status: int) -> HTMLResponse:
    """A refusal as a page, for a browser's form post or navigation (the login form, with the
    message, when nobody is signed in)."""
    service: AttendantService = request.app.state.attendant
    signed = service.signed_in(request.cookies.get(COOKIE))
    form = request.url.path.rstrip("/")
    back = "/petugas" if form in ("/petugas/masuk", "/petugas/keluar") else form
    return render(
        service, request, signed, "petugas_error.html", status=status, error=error, back=back
    )


class LoginForm(Form, kw_only=True):
    """The login form's fields (an empty one counts as not sent)."""

    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    csrf_token: Annotated[str, msgspec.Meta(max_length=200)] | None = msgspec.field(
        default=None, name=CSRF_FIELD
    )
    next_page: Annotated[str, msgspec.Meta(max_length=200)] = msgspec.field(
        default="/petugas", name="next"
    )


class LogoutForm(Form, kw_only=True):
    """The logout button's form: its CSRF token."""

    csrf_token: Annotated[str, msgspec.Meta(max_length=200)] | None = msgspec.field(
        default=None, name=CSRF_FIELD
    )


@routes.get("")
async def attendant_page(request: Request) -> HTMLResponse:
    service = auth.service(request)
    return page(service, request, service.signed_in(request.cookies.get(COOKIE)))


@routes.post("/masuk")
async def login(request: Request) -> Response:
    form = await parse_form(request, LoginForm)
    service = auth.service(request)
    nonce = request.cookies.get(LOGIN_COOKIE)
    back = back_to(form.next_page)
    if not nonce or not service.check(service.login_token(nonce), form.csrf_token):
        return render(service, request, None, "", status=403, error=BAD_CSRF, next=back)
    if service.gw.settings.api_url is None:
        unset = "api_url belum diatur / api_url is not set"
        return render(service, request, None, "", status=503, error=unset, next=back)
    try:
        who = await service.login(form.username.strip(), form.password, client_address(request))
    except LoginRefused as exc:
        return render(
            service,
            request,
            None,
            "",
            status=exc.status,
            headers=exc.headers(),
            error=exc.message,
            next=back,
        )
    response = RedirectResponse(back, status_code=303)
    cookie, _ = start_session(service, request, who)
    set_session(service, request, response, cookie)
    response.delete_cookie(LOGIN_COOKIE, path="/petugas", httponly=True, samesite="strict")
    return response


@routes.post("/keluar")
async def logout(request: Request) -> Response:
    form = await parse_form(request, LogoutForm)
    service = auth.service(request)
    signed = service.signed_in(request.cookies.get(COOKIE))
    if signed is not None:
        if not service.check(signed.csrf, form.csrf_token):
            raise HTTPException(403, BAD_CSRF)
        service.end_session(signed.sid)
        log.info("petugas keluar / attendant signed out: %s", signed.who.username)
    response = RedirectResponse("/petugas", status_code=303)
    clear_session(response)
    return response


@routes.get("/static/{name}")
async def static(request: Request) -> FileResponse:
    """A script or style of the pages. Public (:data:`PUBLIC_PREFIXES`): the login form needs
    them, and they hold no data, only the code every gateway ships."""
    name = path_param(request, "name")
    path = STATIC_DIR / name
    if not STATIC_NAME.match(name) or not path.is_file():
        raise HTTPException(404, "berkas tidak ada / no such file")
    return FileResponse(
        path, media_type=STATIC_TYPES[path.suffix[1:]], headers={"Cache-Control": "no-cache"}
    )


class StatusView(msgspec.Struct, kw_only=True):
    """What the frame's banner says on every page (the weighing page has it in its live view)."""

    broker_connected: bool
    outbox_depth: int
    central_online: bool | None
    pending_voids: int


@routes.get("/api/status")
async def status(request: Request) -> StatusView:
    auth.signed_in(request)
    service = auth.service(request)
    return StatusView(
        broker_connected=service.gw.connected.is_set(),
        outbox_depth=len(service.gw.outbox),
        central_online=service.central_online,
        pending_voids=service.db.journal.pending_voids(),
    )
