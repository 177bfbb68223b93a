"""What the routes depend on: the lifespan's state, ledger sessions, who is asking, and how a
refusal becomes an HTTP error.

Reads use ``engine`` (on SQLite: deferred transactions, so readers never take the write lock).
Writes go through :meth:`Ctx.write`: one database transaction on ``writer`` (on SQLite: BEGIN
IMMEDIATE, as the ledger's writers need) that holds the ledger operation and its audit entry.
The ledger's own functions commit; their session here is joined to that outer transaction with
``join_transaction_mode="create_savepoint"``, so their commit only releases a savepoint (and
their rollback rolls back to it): the write and its audit entry commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, TypedDict

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.settings import ApiSettings
from wastebank import access, ledger
from wastebank.influx import Influx

if TYPE_CHECKING:
    from argon2 import PasswordHasher

SESSION_COOKIE = "wb_sesi"


class State(TypedDict):
    settings: ApiSettings
    engine: Engine  # reads
    writer: Engine  # writes (SQLite: BEGIN IMMEDIATE)
    influx: Influx
    signing_key: bytes
    hasher: PasswordHasher


def get_state(request: Request) -> State:
    s = request.state
    return State(
        settings=s.settings,
        engine=s.engine,
        writer=s.writer,
        influx=s.influx,
        signing_key=s.signing_key,
        hasher=s.hasher,
    )


def read_session(request: Request) -> Iterator[Session]:
    with Session(request.state.engine) as session:
        yield session


StateDep = Annotated[State, Depends(get_state)]
SessionDep = Annotated[Session, Depends(read_session)]


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One transaction for everything written in the block (see the module's docstring)."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
            session.commit()
            outer.commit()
        except BaseException:
            outer.rollback()
            raise
        finally:
            session.close()


# ---- who is asking ----------------------------------------------------------------------------

bearer = OAuth2PasswordBearer(tokenUrl="/api/token", auto_error=False)

NOT_AUTHENTICATED = "perlu masuk / not authenticated"
BAD_TOKEN = "token tidak sah atau kedaluwarsa / invalid or expired token"  # noqa: S105


def principal_from(state: State, token: str, kind: access.TokenKind) -> access.Principal | None:
    try:
        user_id, version = access.read_token(token, state["signing_key"], kind)
    except access.InvalidToken:
        return None
    with Session(state["engine"]) as session:
        return access.principal(session, user_id, version)


def current_principal(
    state: StateDep, token: Annotated[str | None, Depends(bearer)]
) -> access.Principal:
    """The bearer token's user; 401 without a valid one. The JSON API takes bearer tokens only
    (not the page cookie), so a page's cookie can never be used to write across sites."""
    if not token:
        raise HTTPException(401, NOT_AUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    found = principal_from(state, token, "access")
    if found is None:
        raise HTTPException(401, BAD_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    return found


def page_principal(request: Request, state: StateDep) -> access.Principal | None:
    """The page session cookie's user, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    return principal_from(state, token, "session") if token else None


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


def forbidden(why: str = "") -> HTTPException:
    detail = "tidak diizinkan / not allowed"
    return HTTPException(403, f"{detail}: {why}" if why else detail)


def not_found(what: str, key: object) -> HTTPException:
    return HTTPException(404, f"{what} {key} tidak ditemukan / not found")


LEDGER_ERRORS: tuple[tuple[type[ledger.LedgerError], int, str], ...] = (
    (ledger.NotFound, 404, "tidak ditemukan / not found"),
    (ledger.NotAllowed, 403, "tidak diizinkan / not allowed"),
    (ledger.AlreadyVoided, 409, "sudah dibatalkan / already voided"),
    (ledger.InsufficientBalance, 409, "saldo tidak cukup / insufficient balance"),
    (ledger.InsufficientStock, 409, "stok tidak cukup / insufficient stock"),
    (ledger.BelowMinimum, 422, "di bawah penarikan minimum / below the minimum withdrawal"),
    (ledger.InvalidTransition, 409, "status tidak memungkinkan / not possible in this state"),
    (ledger.PriceHistoryLocked, 409, "riwayat harga terkunci / price history is locked"),
    (ledger.DepositRejected, 422, "setoran ditolak / deposit refused"),
)


def ledger_error(_request: Request, exc: Exception) -> JSONResponse:
    """A ledger refusal as a 4xx with the ledger's reason (English) after a bilingual title."""
    status, title = 400, "permintaan ditolak / request refused"
    for cls, code, text in LEDGER_ERRORS:
        if isinstance(exc, cls):
            status, title = code, text
            break
    return JSONResponse({"detail": f"{title}: {exc}"}, status_code=status)


def integrity_error(_request: Request, _exc: Exception) -> JSONResponse:
    """A unique or foreign key constraint refused the write (a race the checks did not see)."""
    return JSONResponse(
        {"detail": "bentrok dengan data yang ada / conflicts with existing data"}, status_code=409
    )


@contextmanager
def invalid_as_422() -> Iterator[None]:
    """A ValueError from the ledger's own validation (RT/RW, NIK format, ...) as a 422."""
    try:
        yield
    except ValueError as exc:
        raise HTTPException(422, f"tidak sah / invalid: {exc}") from None
