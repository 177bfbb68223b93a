"""Signing in: OAuth2 password flow for the JSON API, a session cookie for the pages.

  POST /api/token   form ``username`` + ``password`` (staff: username and password; nasabah:
                    member number and PIN) -> a bearer JWT (``WASTEBANK_AUTH__TOKEN_TTL``)
  POST /api/token/revoke  form ``token``: log out a bearer token (RFC 7009): it stops working
                    at once, in every API process; 200 whether or not it was valid
  GET  /api/me      who the bearer token belongs to
  GET  /masuk       the login page (``?next=/nasabah/AMB-0001``)
  POST /masuk       the login form: sets the session cookie (HttpOnly, SameSite=Lax, Secure over
                    https, a JWT of its own kind) and goes to ``next``
  POST /keluar      revokes the page session (server side: the cookie's token stops working at
                    once, even if a copy of it is kept) and clears the cookie

Both forms carry the CSRF token of api/web.py (a login form without it is refused 403: no
login CSRF).

Both logins share the limits of :func:`wastebank.access.authenticate`: too many failures for
an account or from an address answer 429 with Retry-After.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import (
    SESSION_COOKIE,
    PagePrincipalDep,
    PrincipalDep,
    SessionDep,
    State,
    StateDep,
    client_ip,
    refusals,
    write_session,
)
from api.schemas import Me, Token
from api.web import HTML, CsrfDep, render
from wastebank import access, ledger

router = APIRouter()


def login(
    request: Request, state: State, username: str, secret: str, kind: access.TokenKind
) -> tuple[str, access.Principal]:
    """Check the credentials (HTTPException 401 or 429 if refused); a token of ``kind`` and
    the principal it names."""
    auth = state["settings"].auth
    # the writer: a login writes (its failures, its audit entry), in turn with the other writes
    # (on SQLite one at a time, api/capacity.py); authenticate hashes outside any transaction
    with Session(state["writer"]) as session:
        try:
            user = access.authenticate(
                session,
                username,
                secret,
                client_ip=client_ip(request),
                settings=auth,
                hasher=state["hasher"],
                user_agent=request.headers.get("user-agent"),
            )
        except access.TooManyAttempts as exc:
            raise HTTPException(
                429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
            ) from None
        except access.LoginRefused as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        ttl = auth.token_ttl if kind == "access" else auth.session_ttl
        token = access.issue_token(user, state["signing_key"], ttl, kind)
        return token, access.principal_of(session, user)


@router.post("/api/token", tags=["auth"], responses=refusals(401, 422, 429))
def token(
    request: Request, state: StateDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password flow: staff sign in with username and password, nasabah with their
    member number and PIN."""
    jwt, who = login(request, state, form.username, form.password, "access")
    ttl = state["settings"].auth.token_ttl
    return Token(access_token=jwt, expires_in=int(ttl.total_seconds()), role=who.role)


def revoke(request: Request, state: State, token: str, kinds: tuple[access.TokenKind, ...]) -> bool:
    """Revoke ``token`` if it is one of ours of one of ``kinds``, signed and unexpired (else
    nothing to do: it is refused anyway); audited as its user's logout."""
    claims = None
    for kind in kinds:
        try:
            claims = access.read_claims(token, state["signing_key"], kind)
            break
        except access.InvalidToken:
            continue
    if claims is None:
        return False
    with write_session(state["writer"]) as session:
        user = session.get(access.User, claims.user_id)
        actor = access.Actor(
            name=user.username if user else f"user:{claims.user_id}",
            role=user.role if user else "unknown",
            user_id=user.id if user else None,
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
        )
        return access.revoke_token(session, claims, actor)


@router.post(
    "/api/token/revoke",
    tags=["auth"],
    response_class=Response,
    responses={
        200: {"description": "revoked, or it was no valid token (RFC 7009)"},
        **refusals(422),
    },
)
def revoke_token(
    request: Request,
    state: StateDep,
    token: Annotated[str, Form(min_length=1, max_length=4096)],
    token_type_hint: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    """Log out: the bearer token (or a page session's) stops working at once. Whoever holds a
    token may end it; the answer is the same whether it was valid or not."""
    del token_type_hint  # both kinds are tried (RFC 7009 allows ignoring the hint)
    revoke(request, state, token, ("access", "session"))
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


@router.get("/api/me", tags=["auth"], responses=refusals(401))
def me(p: PrincipalDep, session: SessionDep) -> Me:
    codes = (
        list(session.scalars(select(ledger.Bank.code).where(ledger.Bank.id.in_(p.bank_ids))))
        if p.bank_ids
        else []
    )
    return Me(
        user_id=p.user_id,
        username=p.username,
        role=p.role,
        name=p.name,
        city_id=p.city_id,
        member_no=p.member_no,
        bank_codes=sorted(codes),
    )


# ---- pages ------------------------------------------------------------------------------------


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (never another site: no scheme, no ``//``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ch in value for ch in "\r\n\\"):
        return None
    return value


def _home(p: access.Principal) -> str:
    if p.role == access.Role.CITIZEN:
        return f"/nasabah/{p.member_no}"
    if p.role == access.Role.DLH:
        return "/dlh"
    if p.role == access.Role.ADMIN:
        return "/admin"
    return "/masuk"  # attendants: their pages are on the bank's gateway


def _page(
    request: Request,
    *,
    next_url: str | None,
    error: str | None = None,
    who: access.Principal | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        request.state.signing_key,
        who,
        "login.html",
        {"next": next_url or "", "error": error},
        status=status,
        headers=headers,
    )


@router.get("/masuk", response_class=HTMLResponse, tags=["pages"])
def login_page(request: Request, who: PagePrincipalDep, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return _page(request, next_url=safe_next(next), who=who)


@router.post(
    "/masuk",
    response_class=HTMLResponse,
    tags=["pages"],
    status_code=303,
    responses={
        303: {"description": "signed in: to next, else the member's page"},
        401: {"description": "wrong username or secret: the login page again", **HTML},
        429: {"description": "too many failed logins: the login page again", **HTML},
        403: {"description": "no valid CSRF token: reload the login page", **HTML},
    },
)
def login_form(
    request: Request,
    state: StateDep,
    _csrf: CsrfDep,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    next: Annotated[str | None, Form(max_length=500)] = None,  # noqa: A002
) -> Response:
    target = safe_next(next)
    try:
        jwt, who = login(request, state, username, password, "session")
    except HTTPException as exc:
        headers = {k: v for k, v in (exc.headers or {}).items() if k == "Retry-After"}
        return _page(
            request,
            next_url=target,
            error=str(exc.detail),
            status=exc.status_code,
            headers=headers or None,
        )
    response = RedirectResponse(target or _home(who), status_code=303)
    auth = state["settings"].auth
    secure = request.url.scheme == "https" if auth.cookie_secure == "auto" else auth.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        jwt,
        max_age=int(auth.session_ttl.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    return response


@router.post(
    "/keluar",
    tags=["pages"],
    response_class=RedirectResponse,
    status_code=303,
    responses={
        303: {"description": "signed out: to the login page"},
        403: {"description": "no valid CSRF token", **HTML},
    },
)
def logout(request: Request, state: StateDep, _csrf: CsrfDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        revoke(request, state, token, ("session",))
    response = RedirectResponse("/masuk", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
