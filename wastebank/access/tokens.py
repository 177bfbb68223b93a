"""Tokens: the key that signs them, issuing and reading them (JWT, HS256), revoking one."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete
from sqlalchemy.orm import Session

from wastebank.access.audit import Actor, audit
from wastebank.access.errors import AccessError, InvalidToken
from wastebank.access.models import RevokedToken, User
from wastebank.access.settings import AuthSettings
from wastebank.ledger import utcnow

log = logging.getLogger("wastebank.access")


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


TokenKind = Literal["access", "session"]
JWT_ALGORITHM = "HS256"


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
