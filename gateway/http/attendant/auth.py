"""Who may use the local endpoint: the attendant's session cookie, checked before routing
(:class:`SessionGate`, deny by default), the dependencies routes take it from, and the CSRF
token every write carries."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http.attendant.service import AttendantService, SignedIn

COOKIE: Final = "wb_petugas"
LEGACY_COOKIE_PATH: Final = "/petugas"
"""Where older gateways scoped the cookie: cleared at login and logout (a browser keeps one)."""
LOGIN_COOKIE: Final = "wb_petugas_masuk"
"""The login form's nonce (double submit: the form's token is an HMAC of it)."""
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
NOT_SIGNED_IN: Final = "belum masuk / not signed in"
BAD_CSRF: Final = "token CSRF tidak sah; muat ulang halaman / invalid CSRF token: reload the page"
PUBLIC: Final = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/petugas"),
        ("POST", "/petugas/masuk"),
        ("POST", "/petugas/keluar"),
        ("POST", "/petugas/api/session"),
    }
)
"""The only routes of the local endpoint open without a session (HEAD as GET), with
:data:`PUBLIC_PREFIXES`."""
PUBLIC_PREFIXES: Final = (("GET", "/petugas/static/"),)
"""The pages' scripts and styles: the login form needs them; they hold no data."""
PAGES: Final = "/petugas"
"""Under it, a browser asking for a page (not ``/petugas/api/...``) without a session is sent
to the login form, which brings it back after the login (``?next=``)."""
FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")


class SessionGate:
    """Deny by default: a request without a live session to anything but :data:`PUBLIC` (a
    path that does not exist too: no map of the routes for strangers) is answered 401 here,
    before routing and before its body is read. The session found is left in the request's
    state for :func:`signed_in`."""

    def __init__(self, app: ASGIApp, service: AttendantService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        signed = self.service.signed_in(Request(scope).cookies.get(COOKIE))
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        path = scope["path"].rstrip("/") or "/"
        if signed is None and not public(method, path):
            request = Request(scope)
            response: Response = JSONResponse(
                {"detail": NOT_SIGNED_IN}, 401, headers={"Cache-Control": "no-store"}
            )
            if method == "GET" and wants_page(request, path):
                response = RedirectResponse(
                    f"{PAGES}?next={quote(path, safe='/')}",
                    303,
                    headers={"Cache-Control": "no-store"},
                )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["signed_in"] = signed
        await self.app(scope, receive, send)


def public(method: str, path: str) -> bool:
    return (method, path) in PUBLIC or any(
        method == m and path.startswith(prefix) for m, prefix in PUBLIC_PREFIXES
    )


def wants_page(request: Request, path: str) -> bool:
    """A browser's navigation to a page of the attendant's app (its Accept names HTML)."""
    return (
        path.startswith(PAGES + "/")
        and not path.startswith(PAGES + "/api/")
        and "text/html" in request.headers.get("accept", "")
    )


def service(request: Request) -> AttendantService:
    """The service the endpoint was composed with (``app.state.attendant``)."""
    found: AttendantService = request.app.state.attendant
    return found


def signed_in(request: Request) -> SignedIn:
    """The request's live session (401 without one)."""
    kept: object = request.scope.get("state", {}).get("signed_in")
    found = kept if isinstance(kept, SignedIn) else None
    if found is None:  # no gate in front (routes used on their own)
        found = service(request).signed_in(request.cookies.get(COOKIE))
    if found is None:
        raise HTTPException(401, NOT_SIGNED_IN)
    return found


async def csrf_checked(request: Request) -> SignedIn:
    """For writes: the live session, and its CSRF token in the ``X-CSRF-Token`` header or the
    form's ``csrf_token`` field (403 otherwise). A cross-site page can neither read the token
    nor set the header without the gateway's CORS consent (it gives none)."""
    signed = signed_in(request)
    given: object = request.headers.get(CSRF_HEADER)
    if given is None and request.headers.get("content-type", "").startswith(FORM_TYPES):
        # The body first: Starlette keeps it, so the form is parsed from the kept bytes and a
        # handler may still read the body after this check (reading only the form would
        # consume the stream, and a later read would fail with "Stream consumed": a 500).
        await request.body()
        given = (await request.form()).get(CSRF_FIELD)
    if not isinstance(given, str) or not service(request).check(signed.csrf, given):
        raise HTTPException(403, BAD_CSRF)
    return signed


def https(request: Request) -> bool:
    return request.url.scheme == "https"


def client_address(request: Request) -> str | None:
    """The client's address (the peer of its connection: the gateway is behind no proxy)."""
    return request.client.host if request.client else None
