"""A session's cookie (set at login, cleared at logout), and the JSON login for programs
(`wastebank attend`, `wastebank calibrate`):

  POST   /petugas/api/session    log in: the session cookie and its CSRF token
  DELETE /petugas/api/session    log out
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.http.attendant import auth
from gateway.http.attendant.auth import COOKIE, LEGACY_COOKIE_PATH, client_address, https
from gateway.http.attendant.service import AttendantService, LoginRefused, SignedIn, Who
from gateway.http.routing import Routes, json_response, parse_body

log = logging.getLogger("wastebank.gateway")

routes = Routes(prefix="/petugas")


class LoginIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class SessionOut(msgspec.Struct, kw_only=True):
    """A JSON login's answer (the session itself is the ``wb_petugas`` cookie set with it)."""

    username: str
    name: str
    role: str
    offline: bool
    csrf_token: Annotated[str, msgspec.Meta(description="send it as X-CSRF-Token with every write")]
    expires_at: datetime


def start_session(service: AttendantService, request: Request, who: Who) -> tuple[str, SignedIn]:
    """A new session for ``who`` (one the browser had is ended): its cookie and itself."""
    old = service.signed_in(request.cookies.get(COOKIE))
    if old is not None:
        service.end_session(old.sid)
    cookie = service.session_cookie(who)
    signed = service.signed_in(cookie)
    assert signed is not None
    log.info(
        "petugas masuk / attendant signed in: %s%s",
        who.username,
        " (offline)" if who.offline else "",
    )
    return cookie, signed


def set_session(
    service: AttendantService, request: Request, response: Response, cookie: str
) -> None:
    response.delete_cookie(COOKIE, path=LEGACY_COOKIE_PATH, httponly=True, samesite="strict")
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(service.settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=https(request),
    )


def clear_session(response: Response) -> None:
    for path in ("/", LEGACY_COOKIE_PATH):
        response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict")


@routes.post("/api/session")
async def open_session(request: Request) -> Response:
    """Log in from a program (`wastebank attend`, `wastebank calibrate`): the session
    cookie and its CSRF token. JSON only (415 otherwise), so no other site's form can
    log a browser in."""
    body = await parse_body(request, LoginIn)
    service = auth.service(request)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise HTTPException(415, "kirim JSON / send application/json")
    if service.gw.settings.api_url is None:
        raise HTTPException(503, "api_url belum diatur / api_url is not set")
    try:
        who = await service.login(body.username.strip(), body.password, client_address(request))
    except LoginRefused as exc:
        raise HTTPException(exc.status, exc.message, exc.headers()) from None
    cookie, signed = start_session(service, request, who)
    out = SessionOut(
        username=who.username,
        name=who.name,
        role=who.role,
        offline=who.offline,
        csrf_token=signed.csrf,
        expires_at=datetime.now(UTC) + timedelta(hours=service.settings.session_hours),
    )
    response = json_response(out, headers={"Cache-Control": "no-store"})
    set_session(service, request, response, cookie)
    return response


@routes.delete("/api/session", status_code=204)
async def close_session(request: Request) -> Response:
    signed = await auth.csrf_checked(request)
    auth.service(request).end_session(signed.sid)
    log.info("petugas keluar / attendant signed out: %s", signed.who.username)
    response = Response(status_code=204)
    clear_session(response)
    return response
