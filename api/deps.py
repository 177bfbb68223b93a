"""What the routes depend on: the lifespan's state, ledger sessions, who is asking, and how a
refusal becomes an HTTP error.

Reads use ``engine`` (on SQLite: deferred transactions, so readers never take the write lock).
Writes go through :meth:`Ctx.write`: one database transaction on ``writer`` (on SQLite: BEGIN
IMMEDIATE, as the ledger's writers need) that holds the ledger operation and its audit entry.
The request owns it: the ledger never commits, so the write and its audit entry are committed
together when the route's block ends, or rolled back together when it raises.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypedDict, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.limits import flat_routes
from api.settings import ApiSettings
from wastebank import access
from wastebank.errors import WastebankError
from wastebank.influx import Influx

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from api.capacity import Capacity, HealthDesk

log = logging.getLogger("api.deps")

SESSION_COOKIE = "wb_sesi"
T = TypeVar("T")


class State(TypedDict):
    settings: ApiSettings
    engine: Engine  # reads
    writer: Engine  # writes (SQLite: BEGIN IMMEDIATE)
    influx: Influx
    signing_key: bytes
    hasher: PasswordHasher  # api/capacity.py's GatedHasher: hashes in a login slot only
    capacity: Capacity  # admission: api/capacity.py
    health: HealthDesk  # /health's own connection, threads and shared probe


async def get_state(request: Request) -> State:
    """Async: no I/O, so FastAPI need not hand it to a worker thread (as it does a plain def)."""
    s = request.state
    return State(
        settings=s.settings,
        engine=s.engine,
        writer=s.writer,
        influx=s.influx,
        signing_key=s.signing_key,
        hasher=s.hasher,
        capacity=s.capacity,
        health=s.health,
    )


def read_session(request: Request) -> Iterator[Session]:
    with Session(request.state.engine) as session:
        yield session


StateDep = Annotated[State, Depends(get_state)]
SessionDep = Annotated[Session, Depends(read_session)]


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One transaction for everything written in the block, committed when it ends and rolled
    back when it raises (see the module's docstring)."""
    with Session(engine) as session, session.begin():
        yield session


# ---- who is asking ----------------------------------------------------------------------------

bearer = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)

NOT_AUTHENTICATED = "perlu masuk / not authenticated"
BAD_TOKEN = "token tidak sah atau kedaluwarsa / invalid or expired token"  # noqa: S105


def principal_from(
    state: State, session: Session, token: str, kind: access.TokenKind
) -> access.Principal | None:
    try:
        claims = access.read_claims(token, state["signing_key"], kind)
    except access.InvalidToken:
        return None
    return access.principal(session, claims.user_id, claims.version, claims.jti)


TokenDep = Annotated[str | None, Depends(bearer)]


def signed_in(state: State, session: Session, token: str | None) -> access.Principal:
    """The bearer token's user; 401 without a valid one. The JSON API takes bearer tokens only
    (not the page cookie), so a page's cookie can never be used to write across sites."""
    if not token:
        raise HTTPException(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    found = principal_from(state, session, token, "access")
    if found is None:
        raise HTTPException(401, BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return found


def current_principal(state: StateDep, session: SessionDep, token: TokenDep) -> access.Principal:
    """:func:`signed_in`, in the request's read session (one per request, shared with the
    route)."""
    return signed_in(state, session, token)


async def read_as(
    state: State, token: str | None, work: Callable[[Session, access.Principal], T]
) -> T:
    """``work`` on behalf of the bearer of ``token``, in a read session: the session, the
    principal and the work all in one worker thread. A route with plain-def dependencies
    (SessionDep, PrincipalDep) and body hands each to the thread pool in turn, each hand-off
    costing about as much CPU as a balance's SQL; the most frequent reads (a balance, a
    passbook) use this instead, with only async dependencies (StateDep, TokenDep).

    Never on the event loop itself, not even a balance on SQLite (where a WAL read never waits
    for a writer): a connection checkout can wait, and the loop with it, /health included
    (docs/scaling.md, "The API under a mixed load")."""

    def run() -> T:
        with Session(state["engine"]) as session:
            return work(session, signed_in(state, session, token))

    return await anyio.to_thread.run_sync(run, limiter=_read_limiter())


# Reads run in at most this many threads at once (FastAPI's sync routes may use all of
# capacity.requests + capacity.logins, api/capacity.py; anyio's default is 40). Under load many
# threads queue for the GIL, and the hand-offs cost more CPU than the reads (docs/scaling.md,
# "The API's read path"). PostgreSQL's waits are short (a local network), so a few threads keep
# a core busy there too.
READ_THREADS = 4
_read_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _read_limiter() -> anyio.CapacityLimiter:
    """The read limiter of the running event loop (an app may be served by several loops in
    its life, as in the tests)."""
    loop = asyncio.get_running_loop()
    limiter = _read_limiters.get(loop)
    if limiter is None:
        limiter = _read_limiters[loop] = anyio.CapacityLimiter(READ_THREADS)
    return limiter


def page_principal(
    request: Request, state: StateDep, session: SessionDep
) -> access.Principal | None:
    """The page session cookie's user, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    return principal_from(state, session, token, "session") if token else None


PrincipalDep = Annotated[access.Principal, Depends(current_principal)]
PagePrincipalDep = Annotated[access.Principal | None, Depends(page_principal)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass(frozen=True)
class Ctx:
    """A request by a signed-in user: their principal, the state, and where it came from."""

    state: State
    principal: access.Principal
    actor: access.Actor

    @property
    def p(self) -> access.Principal:
        return self.principal

    @contextmanager
    def write(self) -> Iterator[Session]:
        with write_session(self.state["writer"]) as session:
            yield session

    def audit(
        self, session: Session, action: str, entity: str, entity_id: object, summary: str = ""
    ) -> None:
        access.audit(session, self.actor, action, entity, entity_id, summary)


def request_ctx(request: Request, state: StateDep, p: PrincipalDep) -> Ctx:
    actor = access.Actor(
        name=p.username,
        role=p.role,
        user_id=p.user_id,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return Ctx(state=state, principal=p, actor=actor)


CtxDep = Annotated[Ctx, Depends(request_ctx)]


# ---- refusals ---------------------------------------------------------------------------------


class Refusal(BaseModel):
    """The body of every refusal: why, in Bahasa Indonesia then English; for a request that
    does not fit the schema, FastAPI's list of validation errors (``loc``, ``msg``, ``type``),
    each ``msg`` in those words too (api/validation.py)."""

    detail: str | list[dict[str, Any]]


REFUSALS: dict[int, str] = {
    400: "the body is not valid JSON",
    401: "not signed in, or the token is invalid or expired",
    403: "signed in, but not allowed",
    404: "not found, or not visible to the caller",
    409: "conflicts with the ledger's state",
    422: "invalid request",
    429: "too many failed logins: try again after Retry-After seconds",
    503: "InfluxDB is unreachable",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that may refuse with ``codes``."""
    return {code: {"model": Refusal, "description": REFUSALS[code]} for code in codes}


READ = refusals(401, 403, 404, 422)  # a signed-in read of a bank's or member's data
WRITE = refusals(400, 401, 403, 404, 409, 422)  # a signed-in write with a JSON body


def forbidden(why: str = "") -> HTTPException:
    detail = "tidak diizinkan / not allowed"
    return HTTPException(403, f"{detail}: {why}" if why else detail)


def not_found(what: str, key: object) -> HTTPException:
    return HTTPException(404, f"{what} {key} tidak ditemukan / not found")


def refusal_detail(exc: WastebankError) -> str:
    """What a refusal answers: its family's bilingual title, then its own reason."""
    return f"{exc.title}: {exc}"


def wastebank_error(_request: Request, exc: Exception) -> JSONResponse:
    """Any of our errors (:mod:`wastebank.errors`) as the HTTP status its class carries, with
    :func:`refusal_detail`. A 5xx is also logged with its traceback: it is ours to mend."""
    assert isinstance(exc, WastebankError)
    if exc.status >= 500:
        log.error("%s", refusal_detail(exc), exc_info=exc)
    return JSONResponse({"detail": refusal_detail(exc)}, status_code=exc.status)


def integrity_error(_request: Request, _exc: Exception) -> JSONResponse:
    """A unique or foreign key constraint refused the write (a race the checks did not see)."""
    return JSONResponse(
        {"detail": "bentrok dengan data yang ada / conflicts with existing data"}, status_code=409
    )


def data_error(_request: Request, _exc: Exception) -> JSONResponse:
    """The database refused a value the request brought: on PostgreSQL a NUL character in any
    text (a path, a query, a login, a JSON string), which SQLite stores and PostgreSQL cannot."""
    return JSONResponse(
        {"detail": "tidak sah / invalid: a value the database cannot hold (a NUL character?)"},
        status_code=422,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own answer, but a 405's ``Allow`` lists every method of the path: Starlette
    lists only those of the first route that matched it (GET of GET + POST /masuk)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = {
            method
            for route in flat_routes(request.app.routes)
            if getattr(route, "methods", None) and route.path_regex.match(request.url.path)
            for method in route.methods
        }
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


@contextmanager
def invalid_as_422() -> Iterator[None]:
    """A ValueError from the ledger's own validation (RT/RW, NIK format, ...) as a 422; so is
    an OverflowError (a date too near year 1 or 9999 to take a day or a time zone from)."""
    try:
        yield
    except (ValueError, OverflowError) as exc:
        raise HTTPException(422, f"tidak sah / invalid: {exc}") from None
