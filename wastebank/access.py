"""Who may do what: users and roles, password and PIN hashing, tokens, login limits, the audit log.

Roles (``app_user.role``):

- **admin**: everything, in every city; may set prices and decide withdrawals at any bank.
- **dlh**: staff of a city's Dinas Lingkungan Hidup: reads everything in their city (``city_id``),
  writes nothing, and sees members by number only (no name, phone, address or NIK flag).
- **attendant**: a petugas. Their username is their ``staff_id`` in the ledger's ``attendant``
  table; they act at the banks they are an active attendant of and, at an induk, at its units
  (as :func:`wastebank.ledger.require_attendant` allows).
- **citizen**: a nasabah. Their username is their member number and their secret a 6-digit PIN;
  they see their own account only, and may ask for and cancel their own withdrawals.

The tables live on :class:`wastebank.ledger.Base` (migration 0003), so they are in the ledger's
database and its backups: a write and its audit entry commit in one transaction. Secrets are
hashed with argon2id (argon2-cffi); tokens are JWTs (HS256) signed with a key from the settings
or generated once into the run directory (:func:`signing_key`). A token names the user and their
``token_version``: disabling a user or changing their secret bumps it and ends every token they
hold. Each token also has an id of its own (``jti``): a logout revokes that one token (a row
in ``revoked_token``) and the user's other sessions go on. Login failures are rows too
(``login_failure``), so several API processes share the limits: per account (its
:func:`login_key`) and per client address, each within a sliding window.

This module is plain functions on a :class:`~sqlalchemy.orm.Session`, used by the API and by
``wastebank user``; it knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    bindparam,
    delete,
    func,
    select,
    true,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from wastebank.config import RUN_DIR
from wastebank.ledger import Attendant, Bank, Base, City, Member, UtcDateTime, utcnow

if TYPE_CHECKING:  # argon2 and PyJWT are imported when used: the ledger imports this module
    from argon2 import PasswordHasher

log = logging.getLogger("wastebank.access")


class Role(StrEnum):
    ADMIN = "admin"
    DLH = "dlh"
    ATTENDANT = "attendant"
    CITIZEN = "citizen"


STAFF_ROLES = (Role.ADMIN, Role.DLH, Role.ATTENDANT)
# A staff username (an attendant's is their ledger staff_id): lower case, no colon, so it never
# looks like a citizen's author string ("nasabah:<member no>").
STAFF_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PIN = re.compile(r"^[0-9]{6}$")
MIN_PASSWORD = 10


# ---- tables -----------------------------------------------------------------------------------


class User(Base):
    """A login: staff (admin, DLH, attendant) with a password, or a nasabah with a PIN."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'dlh', 'attendant', 'citizen')", name="ck_app_user_role"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(
        String(64), unique=True, doc="staff: their staff id; citizen: their member number"
    )
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200), doc="argon2id of the password or PIN")
    city_id: Mapped[int | None] = mapped_column(ForeignKey("city.id"), nullable=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("member.id"), nullable=True, unique=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    secret_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    city: Mapped[City | None] = relationship()
    member: Mapped[Member | None] = relationship()


class LoginFailure(Base):
    """One failed login, counted against its account and its client address (one row each)."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), doc="account:<login> or ip:<address>")
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class RevokedToken(Base):
    """A token ended before its expiry (a logout), by its ``jti``. Kept until the token would
    have expired anyway (then purged at the next revocation): every API process refuses it."""

    __tablename__ = "revoked_token"
    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), nullable=True
    )
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """One write: who, what, when (UTC), from where. Added in the write's own transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(80), doc="username, or cli:<os user>")
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), doc="e.g. withdrawal.approve")
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(120))
    summary: Mapped[str] = mapped_column(Text, default="")
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


# ---- settings ---------------------------------------------------------------------------------

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "dev", "test"})


class AuthSettings(BaseModel):
    """Tokens, sessions, login limits and hashing (``WASTEBANK_AUTH__*``)."""

    secret_key: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="key that signs tokens and session cookies (WASTEBANK_AUTH__SECRET_KEY), at "
        "least 32 random characters; the same in every API process of a city. Unset: one is "
        "generated into secret_file on first start.",
    )
    secret_file: Path = Field(
        default_factory=lambda: RUN_DIR / "api-secret.key",
        description="where the generated key is kept (mode 0600) when secret_key is unset",
    )
    token_ttl: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    session_ttl: timedelta = Field(
        default=timedelta(hours=12), gt=timedelta(0), description="page session cookies"
    )
    cookie_secure: bool | Literal["auto"] = Field(
        default="auto",
        description="Secure cookies: auto = when the request came over https (behind a proxy: "
        "its X-Forwarded-Proto, from a proxy in WASTEBANK_HTTP__TRUSTED_PROXIES)",
    )
    login_max_failures: int = Field(default=5, ge=1, description="per account, per window")
    login_max_failures_per_ip: int = Field(default=20, ge=1, description="per client address")
    login_window: timedelta = Field(default=timedelta(minutes=15), gt=timedelta(0))
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    @field_validator("secret_key")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        if raw.strip().lower() in PLACEHOLDER_SECRETS or len(set(raw)) < 8:
            raise ValueError("a placeholder, not a random key")
        return value


class AccessError(Exception):
    """A request about users that is refused; the message says why (Bahasa Indonesia first)."""


def password_hasher(settings: AuthSettings) -> PasswordHasher:
    """argon2id with the settings' cost (tests lower it; production keeps argon2-cffi's own)."""
    from argon2 import PasswordHasher

    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def signing_key(settings: AuthSettings) -> bytes:
    """The key that signs tokens: ``secret_key``, or the one in ``secret_file``, generated there
    (random, mode 0600) when it does not exist yet. Processes that start at once agree: the new
    key is written to a temporary file and linked into place, so the first link wins and the
    others read it. Several API machines need ``secret_key`` set to one value."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.secret_file
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            log.info("kunci tanda tangan baru / new token signing key: %s", path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text().strip()
    if len(key) < 32:
        raise AccessError(
            f"kunci di {path} terlalu pendek / the key in {path} is shorter than 32 characters: "
            "delete it to generate a new one"
        )
    return key.encode()


# ---- secrets ----------------------------------------------------------------------------------


def _weak_pin(pin: str) -> bool:
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:], strict=False)}
    return len(set(pin)) == 1 or steps in ({1}, {-1})


def check_secret(role: str, secret: str, username: str = "") -> None:
    """Refuse a PIN that is not 6 digits (or is 000000, 123456, ...), a password shorter than
    ``MIN_PASSWORD`` or equal to the username."""
    if role == Role.CITIZEN:
        if not PIN.fullmatch(secret):
            raise AccessError("PIN harus 6 angka / a PIN is 6 digits")
        if _weak_pin(secret):
            raise AccessError("PIN terlalu mudah ditebak / the PIN is too easy to guess")
        return
    if len(secret) < MIN_PASSWORD:
        raise AccessError(
            f"kata sandi minimal {MIN_PASSWORD} karakter / a password has at least "
            f"{MIN_PASSWORD} characters"
        )
    if secret.lower() == username.lower():
        raise AccessError("kata sandi sama dengan nama pengguna / the password is the username")


def generate_pin() -> str:
    """A random 6-digit PIN that :func:`check_secret` accepts."""
    while True:
        pin = f"{secrets.randbelow(10**6):06d}"
        if not _weak_pin(pin):
            return pin


@functools.cache
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost, memory_kib, parallelism=parallelism).hash(
        secrets.token_hex(16)
    )


def _verify(hasher: PasswordHasher, stored: str | None, secret: str) -> bool:
    """Whether ``secret`` matches ``stored``; with no stored hash, the same work on a dummy one,
    so that an unknown login takes as long as a wrong secret."""
    from argon2.exceptions import InvalidHashError, VerificationError

    target = stored or _dummy_hash(hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    try:
        return hasher.verify(target, secret) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


# ---- the audit log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who writes, and from where: a signed-in user (API) or an operator (``wastebank`` CLI)."""

    name: str
    role: str
    user_id: int | None = None
    client_ip: str | None = None
    user_agent: str | None = None


def cli_actor() -> Actor:
    import getpass

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(name=f"cli:{who}"[:80], role="cli", user_agent="wastebank-cli")


def audit(
    session: Session, actor: Actor, action: str, entity: str, entity_id: object, summary: str = ""
) -> AuditEntry:
    """Add an audit entry to ``session``'s transaction (flushed, not committed): it commits or
    rolls back with the write it describes."""
    entry = AuditEntry(
        at=utcnow(),
        user_id=actor.user_id,
        actor=actor.name[:80],
        role=actor.role[:16],
        action=action[:64],
        entity=entity[:32],
        entity_id=str(entity_id)[:120],
        summary=summary[:2000],
        client_ip=actor.client_ip[:64] if actor.client_ip else None,
        user_agent=actor.user_agent[:300] if actor.user_agent else None,
    )
    session.add(entry)
    session.flush()
    return entry


def audit_entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit entries, newest first, filtered by what is given."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity is not None:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    return list(session.scalars(stmt))


# ---- users ------------------------------------------------------------------------------------


def login_key(login: str) -> str:
    """What a typed login names, for the login limits and the lookup alike: NFKC (a phone's
    full-width ``ＡＭＢ－０００１``, the long s of ``ſby-0001``) and case folded, at most 64
    characters. Usernames are ASCII (staff ids lower case, member numbers as issued), so every
    spelling that folds to one key is one account."""
    return unicodedata.normalize("NFKC", login.strip()).casefold()[:64]


def find_login(session: Session, login: str) -> User | None:
    """The user whose username is ``login``: as typed (NFKC), else its :func:`login_key`
    upper-cased (a member number typed in lower case on a phone), else the key itself (a
    staff id)."""
    typed = unicodedata.normalize("NFKC", login.strip())[:64]
    if not typed:
        return None
    key = login_key(login)
    for candidate in dict.fromkeys((typed, key.upper(), key)):
        user = session.scalar(select(User).where(User.username == candidate))
        if user is not None:
            return user
    return None


def get_user(session: Session, username: str) -> User:
    user = find_login(session, username)
    if user is None:
        raise AccessError(f"pengguna tidak ada / no user {username!r}")
    return user


def add_user(
    session: Session,
    *,
    role: str,
    secret: str,
    hasher: PasswordHasher,
    actor: Actor,
    username: str | None = None,
    name: str | None = None,
    city_code: str | None = None,
    member_no: str | None = None,
) -> User:
    """Add a login. A citizen's username is their member number (``member_no``) and their name
    the member's; an attendant's username must be a staff id in the ledger's attendant table;
    a DLH user names their city. Audited; flushes, the caller commits."""
    if role not in set(Role):
        raise AccessError(f"peran tidak dikenal / unknown role {role!r}: {', '.join(Role)}")
    city_id = member_id = None
    if role == Role.CITIZEN:
        if not member_no:
            raise AccessError("nasabah perlu --member / a citizen login needs a member number")
        member = session.scalar(select(Member).where(Member.member_no == member_no))
        if member is None:
            raise AccessError(f"nasabah {member_no} tidak ada / no member {member_no}")
        username, name, member_id = member.member_no, name or member.name, member.id
    else:
        if member_no:
            raise AccessError("hanya nasabah punya nomor nasabah / only citizens have a member no")
        if not username or not STAFF_USERNAME.fullmatch(username):
            raise AccessError(
                "nama pengguna staf: huruf kecil, angka, . _ - (2-64) / a staff username is 2-64 "
                f"lower-case letters, digits, '.', '_' or '-': {username!r}"
            )
        attends = session.scalar(
            select(func.count()).select_from(Attendant).where(Attendant.staff_id == username)
        )
        if role == Role.ATTENDANT and not attends:
            raise AccessError(
                f"{username} bukan petugas di bank mana pun / {username} is no attendant's "
                "staff id: add them to their bank (attendant table) first"
            )
        if role == Role.ATTENDANT and not name:
            name = session.scalar(
                select(Attendant.name).where(Attendant.staff_id == username).limit(1)
            )
        if role != Role.ATTENDANT and attends:
            raise AccessError(
                f"{username} adalah id petugas / {username} is an attendant's staff id"
            )
    if role == Role.DLH:
        if not city_code:
            raise AccessError("staf DLH perlu --city / a DLH user needs a city")
        city = session.scalar(select(City).where(City.code == city_code))
        if city is None:
            raise AccessError(f"kota {city_code} tidak ada / no city {city_code}")
        city_id = city.id
    elif city_code:
        raise AccessError("hanya staf DLH terikat pada kota / only DLH users have a city")
    assert username is not None
    if find_login(session, username) is not None:
        raise AccessError(f"pengguna {username} sudah ada / user {username} exists already")
    check_secret(role, secret, username)
    user = User(
        username=username,
        role=role,
        name=(name or username)[:200],
        secret_hash=hasher.hash(secret),
        city_id=city_id,
        member_id=member_id,
        active=True,
        token_version=0,
        secret_changed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit(session, actor, "user.add", "user", user.username, f"role {role}")
    return user


def set_secret(
    session: Session, username: str, secret: str, hasher: PasswordHasher, actor: Actor
) -> User:
    """Set a user's PIN or password; every token they hold stops working. Audited; flushes."""
    user = get_user(session, username)
    check_secret(user.role, secret, user.username)
    user.secret_hash = hasher.hash(secret)
    user.secret_changed_at = utcnow()
    user.token_version += 1
    session.flush()
    audit(session, actor, "user.set_secret", "user", user.username)
    return user


def set_active(session: Session, username: str, active: bool, actor: Actor) -> User:
    """Disable (every token they hold stops working) or enable a user. Audited; flushes."""
    user = get_user(session, username)
    if user.active != active:
        user.active = active
        user.token_version += 1
        session.flush()
        audit(session, actor, "user.enable" if active else "user.disable", "user", user.username)
    return user


def users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))


# ---- login ------------------------------------------------------------------------------------


class LoginRefused(AccessError):
    """Wrong login or secret, or a disabled user (not told apart)."""


class TooManyAttempts(AccessError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"terlalu banyak percobaan, coba lagi dalam {retry_after_s} detik / too many failed "
            f"logins, try again in {retry_after_s} s"
        )
        self.retry_after_s = retry_after_s


def _retry_after(
    session: Session, key: str, limit: int, window: timedelta, now: datetime
) -> int | None:
    """Seconds until ``key`` may try again (None: it may now): once ``limit`` failures fall in
    the window, until the ``limit``-th most recent leaves it."""
    recent = session.scalars(
        select(LoginFailure.at)
        .where(LoginFailure.key == key, LoginFailure.at > now - window)
        .order_by(LoginFailure.at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    return max(1, int((recent[-1] + window - now).total_seconds()) + 1)


def authenticate(
    session: Session,
    login: str,
    secret: str,
    *,
    client_ip: str | None,
    settings: AuthSettings,
    hasher: PasswordHasher,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> User:
    """The active user ``login`` names, if ``secret`` is theirs. Commits.

    Refused with :class:`TooManyAttempts` (before the secret is even checked) while the account
    or the client address has its window's worth of failures; with :class:`LoginRefused` for a
    wrong login or secret or a disabled user, which counts one failure against each. A success
    clears the account's failures (not the address's), rehashes a secret hashed with older
    parameters and is audited. The hash is checked outside any write transaction (on SQLite a
    write holds the whole database); the outcome is then written in a short one of its own.
    """
    now = now or utcnow()
    account_key = f"account:{login_key(login)}"
    ip_key = f"ip:{client_ip or 'unknown'}"
    waits = [
        wait
        for key, limit in (
            (account_key, settings.login_max_failures),
            (ip_key, settings.login_max_failures_per_ip),
        )
        if (wait := _retry_after(session, key, limit, settings.login_window, now)) is not None
    ]
    if waits:
        session.rollback()
        raise TooManyAttempts(max(waits))
    found = find_login(session, login)
    user_id, stored, active = (
        (found.id, found.secret_hash, found.active) if found else (0, None, False)
    )
    session.rollback()  # end the read before the slow hash; what follows writes first
    ok = _verify(hasher, stored, secret)
    if not ok or not active:
        session.add_all([LoginFailure(key=account_key, at=now), LoginFailure(key=ip_key, at=now)])
        session.execute(delete(LoginFailure).where(LoginFailure.at <= now - settings.login_window))
        session.commit()
        raise LoginRefused(
            "nama pengguna atau PIN/kata sandi salah / wrong username, PIN or password"
        )
    session.execute(delete(LoginFailure).where(LoginFailure.key == account_key))
    user = session.get(User, user_id)
    assert user is not None
    if hasher.check_needs_rehash(user.secret_hash):
        user.secret_hash = hasher.hash(secret)
    actor = Actor(user.username, user.role, user.id, client_ip, user_agent)
    audit(session, actor, "auth.login", "user", user.username)
    session.commit()
    return user


# ---- tokens -----------------------------------------------------------------------------------

TokenKind = Literal["access", "session"]
JWT_ALGORITHM = "HS256"


class InvalidToken(AccessError):
    pass


def issue_token(
    user: User, key: bytes, ttl: timedelta, kind: TokenKind, now: datetime | None = None
) -> str:
    """A signed token for ``user``: an API bearer token (``access``) or a page session
    (``session``, in a cookie). It names the user, their token version and itself (``jti``,
    random: what a logout revokes, and what a page's CSRF token is bound to)."""
    import jwt

    now = now or utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "ver": user.token_version,
        "typ": kind,
        "jti": secrets.token_urlsafe(18),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    version: int
    jti: str
    expires_at: datetime


def read_claims(token: str, key: bytes, kind: TokenKind) -> TokenClaims:
    """The claims of a token of ``kind`` that is signed with ``key`` and not expired;
    :class:`InvalidToken` otherwise (a token from before tokens had an id included: it could
    not be revoked, so it is not taken)."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "typ", "ver", "jti"]},
        )
        if claims["typ"] != kind:
            raise InvalidToken(f"a {claims['typ']} token, not {kind}")
        jti = claims["jti"]
        if not isinstance(jti, str) or not 16 <= len(jti) <= 64:
            raise InvalidToken("a token id of another shape")
        return TokenClaims(
            int(claims["sub"]),
            int(claims["ver"]),
            jti,
            datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError, OSError) as exc:
        raise InvalidToken(str(exc)) from None


def read_token(token: str, key: bytes, kind: TokenKind) -> tuple[int, int]:
    """(user id, token version) of :func:`read_claims`."""
    claims = read_claims(token, key, kind)
    return claims.user_id, claims.version


def revoke_token(
    session: Session, claims: TokenClaims, actor: Actor, now: datetime | None = None
) -> bool:
    """End the token ``claims`` describe at once (a logout), in every API process; audited.
    Flushes; the caller commits. False when it was revoked already. Revocations of tokens
    that have expired since are purged here (an expired token is refused anyway)."""
    now = now or utcnow()
    session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= now))
    if session.get(RevokedToken, claims.jti) is not None:
        return False
    session.add(
        RevokedToken(
            jti=claims.jti, user_id=claims.user_id, expires_at=claims.expires_at, revoked_at=now
        )
    )
    session.flush()
    audit(session, actor, "auth.logout", "user", actor.name)
    return True


def is_revoked(session: Session, jti: str) -> bool:
    return session.get(RevokedToken, jti) is not None


# ---- who is asking, and what they may do ------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """The signed-in user as the policy sees them, loaded for each request."""

    user_id: int
    username: str
    role: Role
    name: str
    city_id: int | None = None  # dlh
    member_id: int | None = None  # citizen
    member_no: str | None = None  # citizen
    bank_ids: frozenset[int] = field(default_factory=frozenset)  # attendant: where they act

    @property
    def author(self) -> str:
        """What the ledger records as the author of this user's entries."""
        return f"nasabah:{self.member_no}" if self.role == Role.CITIZEN else self.username


# Every API request loads its principal: one statement, built once (a citizen's member number
# joined in), not the ORM's User and Member loads (several times the Python time of the query).
_PRINCIPAL = (
    select(
        User.id,
        User.username,
        User.role,
        User.name,
        User.city_id,
        User.member_id,
        Member.member_no,
    )
    .outerjoin(Member, Member.id == User.member_id)
    .where(
        User.id == bindparam("user_id"),
        User.active,
        User.token_version == bindparam("token_version"),
        ~select(RevokedToken.jti).where(RevokedToken.jti == bindparam("jti")).exists(),
    )
)


def principal(
    session: Session, user_id: int, token_version: int, jti: str | None = None
) -> Principal | None:
    """The principal of a token: None when the user is gone, disabled, the token is from
    before their secret last changed, or it was revoked (``jti``, a logout)."""
    # on the session's connection: Core rows, without the ORM's execution path
    row = (
        session.connection()
        .execute(_PRINCIPAL, {"user_id": user_id, "token_version": token_version, "jti": jti or ""})
        .one_or_none()
    )
    if row is None:
        return None
    user_id, username, role, name, city_id, member_id, member_no = row
    return _principal(session, user_id, username, Role(role), name, city_id, member_id, member_no)


def principal_of(session: Session, user: User) -> Principal:
    return _principal(
        session,
        user.id,
        user.username,
        Role(user.role),
        user.name,
        user.city_id,
        user.member_id,
        user.member.member_no if user.member is not None else None,
    )


def _principal(
    session: Session,
    user_id: int,
    username: str,
    role: Role,
    name: str,
    city_id: int | None,
    member_id: int | None,
    member_no: str | None,
) -> Principal:
    bank_ids: frozenset[int] = frozenset()
    if role == Role.ATTENDANT:
        own = set(
            session.scalars(
                select(Attendant.bank_id).where(Attendant.staff_id == username, Attendant.active)
            )
        )
        units = (
            set(session.scalars(select(Bank.id).where(Bank.parent_id.in_(own)))) if own else set()
        )
        bank_ids = frozenset(own | units)
    return Principal(
        user_id=user_id,
        username=username,
        role=role,
        name=name,
        city_id=city_id,
        member_id=member_id,
        member_no=member_no,
        bank_ids=bank_ids,
    )


def can_read_bank(p: Principal, bank: Bank) -> bool:
    """Members, stock, sales and withdrawals of ``bank``: admin; DLH of its city; its
    attendants (an induk's also its units')."""
    return can_read_bank_at(p, bank.id, bank.city_id)


def can_read_bank_at(p: Principal, bank_id: int, city_id: int) -> bool:
    """:func:`can_read_bank` for the bank ``bank_id`` in the city ``city_id``."""
    if p.role == Role.ADMIN:
        return True
    if p.role == Role.DLH:
        return p.city_id is not None and city_id == p.city_id
    if p.role == Role.ATTENDANT:
        return bank_id in p.bank_ids
    return False


def can_act_at(p: Principal, bank: Bank, *, admin: bool = True) -> bool:
    """Write at ``bank``: its attendants, and admins where ``admin`` (prices, members,
    withdrawal decisions; not deposits or sales, which only the bank's own staff record)."""
    if p.role == Role.ADMIN:
        return admin
    return p.role == Role.ATTENDANT and bank.id in p.bank_ids


def can_read_member(p: Principal, member: Member) -> bool:
    """A member's account (balance, deposits, withdrawals): the member, and whoever reads
    their bank."""
    if p.role == Role.CITIZEN:
        return p.member_id is not None and member.id == p.member_id
    return can_read_bank(p, member.bank)


def can_read_member_at(p: Principal, member_id: int, bank_id: int, city_id: int) -> bool:
    """:func:`can_read_member` for the member ``member_id`` of the bank ``bank_id`` in the
    city ``city_id`` (a read that has these ids without loading the rows)."""
    if p.role == Role.CITIZEN:
        return p.member_id is not None and member_id == p.member_id
    return can_read_bank_at(p, bank_id, city_id)


def can_see_personal(p: Principal, member: Member) -> bool:
    """Name, phone, address, cards, payout accounts (UU 27/2022): the member, their bank's
    attendants and admins; not DLH, who see member numbers and aggregates."""
    if p.role == Role.DLH:
        return False
    return can_read_member(p, member)


def can_see_personal_at(p: Principal, member_id: int, bank_id: int, city_id: int) -> bool:
    """:func:`can_see_personal` by ids (as :func:`can_read_member_at`)."""
    return p.role != Role.DLH and can_read_member_at(p, member_id, bank_id, city_id)


def is_admin_author(session: Session, author: str) -> bool:
    """Whether ``author`` is an active admin's username (the ledger lets admins act at any
    bank: :func:`wastebank.ledger.require_attendant`)."""
    return bool(
        author
        and session.scalar(
            select(User.id).where(User.username == author, User.role == Role.ADMIN, User.active)
        )
    )


def member_logins(session: Session, member_ids: Iterable[int]) -> dict[int, User]:
    ids = list(member_ids)
    if not ids:
        return {}
    rows: Sequence[User] = session.scalars(select(User).where(User.member_id.in_(ids))).all()
    return {u.member_id: u for u in rows if u.member_id is not None}
