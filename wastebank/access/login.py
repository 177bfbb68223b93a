"""Signing in: the secret checked, failures counted per account and per client address."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from wastebank.access.audit import Actor, audit
from wastebank.access.errors import LoginRefused, TooManyAttempts
from wastebank.access.models import LoginFailure, User
from wastebank.access.passwords import verify_secret
from wastebank.access.settings import AuthSettings
from wastebank.access.users import find_login, login_key
from wastebank.ledger import utcnow

if TYPE_CHECKING:
    from argon2 import PasswordHasher


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
    ok = verify_secret(hasher, stored, secret)
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
